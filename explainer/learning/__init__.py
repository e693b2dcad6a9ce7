"""Watch a model learn: a tiny GPT trained on CPU, n-gram baselines, GPT vs BERT, fine-tuning.

Nothing here imports streamlit; the Learning page polls ``Trainer.snapshot()``.
"""
from explainer.learning.corpus import (ATTENTION_SENTENCE, PROBES, Corpus, corpus_from_text, facts_corpus,
                                       finetune_corpus, load_corpus)
from explainer.learning.finetune import FineTuneResult, fine_tune
from explainer.learning.ngram import (HeldoutScore, NGramModel, NGramReport, UnseenContinuation, build_ngrams,
                                      count_ngrams, cross_entropy, ngram_report, stream_tokens, unseen_continuations)
from explainer.learning.objectives import (ObjectivesResult, attention_mask_matrix, build_tiny_bert, fill_blank,
                                           mask_tokens, sentence_batch, train_objectives)
from explainer.learning.saving import save_tiny_model, time_training
from explainer.learning.tiny import (AttentionMap, NextTokenDistribution, TinyConfig, TokenProb, attention_map,
                                     build_tiny_gpt, encode_lines, generate_text, next_token_batch,
                                     init_weights, next_token_distribution)
from explainer.learning.tokenizer import SPECIAL_TOKENS, build_tokenizer
from explainer.learning.trainer import Checkpoint, Sample, Trainer, TrainingSnapshot

__all__ = [
    "ATTENTION_SENTENCE", "PROBES", "SPECIAL_TOKENS", "AttentionMap", "Checkpoint", "Corpus", "FineTuneResult",
    "HeldoutScore", "NGramModel", "NGramReport", "ngram_report", "NextTokenDistribution", "ObjectivesResult", "Sample", "TinyConfig",
    "TokenProb", "Trainer", "TrainingSnapshot", "UnseenContinuation", "attention_map", "attention_mask_matrix",
    "build_ngrams", "build_tiny_bert", "build_tiny_gpt", "build_tokenizer", "corpus_from_text",
    "count_ngrams", "cross_entropy", "encode_lines", "facts_corpus", "fill_blank", "fine_tune",
    "finetune_corpus", "generate_text", "load_corpus", "mask_tokens", "next_token_batch",
    "next_token_distribution", "save_tiny_model", "init_weights", "sentence_batch", "stream_tokens", "time_training",
    "train_objectives", "unseen_continuations",
]

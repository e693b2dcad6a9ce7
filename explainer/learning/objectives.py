"""Two ways to pretrain on the same text: next-word prediction (GPT) and fill-in-the-blank (BERT).

GPT sees only the words to the left (causal mask) and predicts every next word. BERT sees
the whole sentence (full mask) with 15% of its tokens hidden and predicts only those.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, GPT2LMHeadModel, PreTrainedTokenizerFast

from explainer.learning.corpus import Corpus
from explainer.learning.threads import one_core
from explainer.learning.tiny import (TinyConfig, TokenProb, build_tiny_gpt, encode_lines, init_weights, next_token_batch,
                                     next_token_loss)
from explainer.learning.tokenizer import build_tokenizer, special_ids

IGNORE = -100  # label value that F.cross_entropy and HF models skip


def attention_mask_matrix(objective: str, T: int) -> np.ndarray:
    """Which positions each token may look at: (T, T), row = query, column = key, 1 = allowed.

    "gpt": lower-triangular (no peeking at the future); "bert": all ones (both directions).
    """
    if objective == "gpt":
        return np.tril(np.ones((T, T), dtype=np.int64))
    if objective == "bert":
        return np.ones((T, T), dtype=np.int64)
    raise ValueError(f"objective must be 'gpt' or 'bert', got {objective!r}")


def build_tiny_bert(vocab_size: int, config: TinyConfig = TinyConfig(), pad_token_id: int = 1) -> BertForMaskedLM:
    """A BertForMaskedLM the same size as the tiny GPT, random weights (private generator), eager attention."""
    bert_config = BertConfig(
        vocab_size=vocab_size, hidden_size=config.n_embd, num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head, intermediate_size=4 * config.n_embd,
        max_position_embeddings=config.n_positions, type_vocab_size=1, pad_token_id=pad_token_id,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager",
    )
    return init_weights(BertForMaskedLM(bert_config), config.seed)


def mask_tokens(input_ids: torch.Tensor, tokenizer: PreTrainedTokenizerFast, generator: torch.Generator,
                mask_prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking. input_ids (B, T) -> (masked inputs (B, T), labels (B, T)).

    Each non-special token is chosen with probability mask_prob; of the chosen, 80% become
    [MASK], 10% a random ordinary token, 10% stay as they are. Labels hold the original id
    at chosen positions and -100 everywhere else; [PAD], [UNK] and [MASK] are never chosen.
    """
    specials = torch.tensor(special_ids(tokenizer))
    eligible = ~torch.isin(input_ids, specials)  # (B, T)
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & eligible  # (B, T)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))  # (B, T)
    roll = torch.rand(input_ids.shape, generator=generator)  # (B, T): decides 80/10/10
    to_mask = chosen & (roll < 0.8)
    to_random = chosen & (roll >= 0.8) & (roll < 0.9)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in set(specials.tolist())])
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]  # (B, T)
    masked = torch.where(to_mask, torch.full_like(input_ids, tokenizer.mask_token_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def masked_lm_loss(model: BertForMaskedLM, masked: torch.Tensor, labels: torch.Tensor,
                   attention: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the chosen positions only. masked, labels, attention: (B, T)."""
    logits = model(input_ids=masked, attention_mask=attention).logits  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)


def sentence_batch(encoded: list[list[int]], batch_size: int, pad_id: int,
                   generator: torch.Generator) -> torch.Tensor:
    """Random whole sentences, right-padded with [PAD]. Returns ids (B, T).

    BERT learns from sentences that start at position 0, as in "the apple is [MASK] .":
    with random windows its absolute positions say nothing about the neighbours, and a
    model this small stays stuck guessing the most common words.
    """
    picks = torch.randint(len(encoded), (batch_size,), generator=generator).tolist()
    T = max(len(encoded[i]) for i in picks)
    ids = torch.full((batch_size, T), pad_id, dtype=torch.long)  # (B, T)
    for row, i in enumerate(picks):
        ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
    return ids


@dataclass(frozen=True)
class ObjectivesResult:
    """A GPT and a BERT of the same size trained on the same text for the same steps."""

    gpt: GPT2LMHeadModel
    bert: BertForMaskedLM
    tokenizer: PreTrainedTokenizerFast
    gpt_loss: tuple[float, ...]  # per step, every next-token position of running-text windows
    bert_loss: tuple[float, ...]  # per step, masked positions of whole sentences only


def train_objectives(corpus: Corpus, steps: int = 400, config: TinyConfig = TinyConfig(),
                     tokenizer: PreTrainedTokenizerFast | None = None,
                     sentences_per_batch: int = 64,
                     progress: Callable[[int, int], None] | None = None) -> ObjectivesResult:
    """Train a tiny GPT (next word) and a tiny BERT (fill the blank) on the same text, same steps.

    Each gets its usual input: GPT running-text windows (as in the Trainer), BERT whole
    padded sentences with 15% of the tokens hidden. ``progress(done, steps)`` is called
    every 10 steps (for a progress bar). Runs on one core of the calling thread.
    """
    tok = tokenizer or build_tokenizer(corpus.language)
    pad = tok.pad_token_id
    stream = encode_lines(tok, corpus.train)  # (N,)
    encoded = [e for e in (tok(line, add_special_tokens=False)["input_ids"] for line in corpus.train)
               if 0 < len(e) <= config.n_positions]
    gpt, bert = build_tiny_gpt(len(tok), config, pad), build_tiny_bert(len(tok), config, pad)
    opt_g = torch.optim.AdamW(gpt.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    opt_b = torch.optim.AdamW(bert.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    gpt_loss: list[float] = []
    bert_loss: list[float] = []
    gpt.train()
    bert.train()
    with one_core():  # this thread only; see threads.py
        for i in range(steps):
            if progress is not None and i % 10 == 0:
                progress(i, steps)
            x, y = next_token_batch(stream, config.batch_size, config.block_size, gen)  # (B, T) each
            gpt_loss.append(_update(opt_g, next_token_loss(gpt, x, y)))
            ids = sentence_batch(encoded, sentences_per_batch, pad, gen)  # (B', T')
            masked, labels = mask_tokens(ids, tok, gen)
            bert_loss.append(_update(opt_b, masked_lm_loss(bert, masked, labels, (ids != pad).long())))
            time.sleep(0)  # let other users of the process run between steps
    gpt.eval()
    bert.eval()
    return ObjectivesResult(gpt, bert, tok, tuple(gpt_loss), tuple(bert_loss))


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def fill_blank(model: BertForMaskedLM, tokenizer: PreTrainedTokenizerFast, text: str, k: int = 5) -> tuple[TokenProb, ...]:
    """Top candidates for the first [MASK] in text, e.g. "the apple is [MASK] ."."""
    model.eval()
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]  # (1, T)
    where = (ids[0] == tokenizer.mask_token_id).nonzero()
    if where.numel() == 0:
        raise ValueError(f"the text needs a {tokenizer.mask_token} to fill")
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, int(where[0, 0])]  # (V,)
    logits[list(special_ids(tokenizer))] = float("-inf")  # the answer is a word, not a special token
    top = torch.topk(torch.softmax(logits, -1), k)
    tokens = tokenizer.convert_ids_to_tokens(top.indices.tolist())
    return tuple(TokenProb(t, float(p)) for t, p in zip(tokens, top.values))

"""GPT (next word) vs BERT (fill the blank): masks, masking rule, and what each learns."""
from __future__ import annotations

import numpy as np
import torch

from explainer.learning import (attention_mask_matrix, build_tokenizer, facts_corpus, fill_blank, generate_text,
                                mask_tokens, train_objectives)
from explainer.learning.objectives import IGNORE


def test_attention_masks() -> None:
    gpt, bert = attention_mask_matrix("gpt", 4), attention_mask_matrix("bert", 4)
    assert gpt.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert bert.tolist() == np.ones((4, 4), dtype=int).tolist()


def test_masking_rule_special_tokens_and_statistics() -> None:
    tok = build_tokenizer("en")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, len(tok), (400, 50), generator=gen)  # (B, T) ordinary tokens
    ids[:, 40:] = tok.pad_token_id  # padding at the end of every row
    ids[:, 0] = tok.unk_token_id
    ids[:, 1] = tok.mask_token_id
    masked, labels = mask_tokens(ids, tok, gen)
    chosen = labels != IGNORE
    assert not chosen[:, 40:].any() and not chosen[:, :2].any()  # never pad / special tokens
    assert torch.equal(labels[chosen], ids[chosen])  # labels: the original token where chosen
    assert torch.equal(masked[~chosen], ids[~chosen])  # untouched elsewhere
    eligible = 400 * 38
    assert abs(chosen.sum().item() / eligible - 0.15) < 0.01
    n = chosen.sum().item()
    as_mask = (masked[chosen] == tok.mask_token_id).sum().item() / n
    unchanged = (masked[chosen] == ids[chosen]).sum().item() / n
    assert abs(as_mask - 0.8) < 0.02
    assert abs(unchanged - 0.1) < 0.02 + 1 / len(tok)  # a random draw can hit the same token
    assert abs(1 - as_mask - unchanged - 0.1) < 0.02
    assert not torch.isin(masked[chosen & (masked != tok.mask_token_id)], torch.tensor([0, 1, 2])).any()


def test_gpt_and_bert_learn_the_same_fact_their_own_way() -> None:
    result = train_objectives(facts_corpus("en"), steps=400)
    assert len(result.gpt_loss) == len(result.bert_loss) == 400
    assert np.mean(result.gpt_loss[-20:]) < 1.2
    assert np.mean(result.bert_loss[-20:]) < 1.5 < np.mean(result.bert_loss[:10])
    candidates = fill_blank(result.bert, result.tokenizer, "the apple is [MASK] .")
    assert candidates[0].token == "red"
    assert all(c.token not in ("[MASK]", "[PAD]", "[UNK]") for c in candidates)
    assert generate_text(result.gpt, result.tokenizer, "the apple is", max_new_tokens=2) == "red."

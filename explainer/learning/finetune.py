"""Fine-tuning: keep training an already trained tiny GPT on a second, differently styled text."""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from explainer.learning.corpus import PROBES, Corpus
from explainer.learning.threads import one_core
from explainer.learning.tiny import (NextTokenDistribution, TinyConfig, encode_lines, next_token_batch,
                                     next_token_distribution, next_token_loss)


@dataclass(frozen=True)
class FineTuneResult:
    """Probe predictions of the same model before and after fine-tuning."""

    base: GPT2LMHeadModel  # an untouched copy of the model before fine-tuning
    tuned: GPT2LMHeadModel
    before: tuple[NextTokenDistribution, ...]
    after: tuple[NextTokenDistribution, ...]
    loss: tuple[float, ...]  # per fine-tuning step

    @property
    def changed(self) -> tuple[str, ...]:
        """Prompts whose most likely next token changed."""
        return tuple(b.prompt for b, a in zip(self.before, self.after) if b.best != a.best)


def fine_tune(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, corpus: Corpus, steps: int = 100,
              config: TinyConfig = TinyConfig(), learning_rate: float | None = None,
              probes: tuple[str, ...] | None = None,
              progress: Callable[[int, int], None] | None = None) -> FineTuneResult:
    """Train a copy of ``model`` on ``corpus`` for ``steps`` steps; the input model is not modified.

    The learning rate defaults to a third of pretraining's: enough to shift the probes in
    ~100 steps, small enough to show that unrelated facts mostly survive.
    ``progress(done, steps)`` is called every 10 steps. With a running Trainer pass
    ``trainer.copy_model()``.
    """
    probes = probes or PROBES[corpus.language]
    base = copy.deepcopy(model).eval()
    tuned = copy.deepcopy(model)
    stream = encode_lines(tokenizer, corpus.train)  # (N,)
    lr = learning_rate if learning_rate is not None else config.learning_rate / 3
    optimizer = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed + 1)
    losses: list[float] = []
    tuned.train()
    with one_core():  # this thread only; see threads.py
        for i in range(steps):
            if progress is not None and i % 10 == 0:
                progress(i, steps)
            x, y = next_token_batch(stream, config.batch_size, config.block_size, gen)  # (B, T)
            loss = next_token_loss(tuned, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            time.sleep(0)  # let other users of the process run between steps
    tuned.eval()
    before = tuple(next_token_distribution(base, tokenizer, p) for p in probes)
    after = tuple(next_token_distribution(tuned, tokenizer, p) for p in probes)
    return FineTuneResult(base, tuned, before, after, tuple(losses))

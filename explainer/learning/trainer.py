"""Train the tiny GPT in a background thread and publish immutable snapshots.

Readers (a Streamlit page polling once a second) call ``snapshot()``, which only swaps a
reference under a lock and never waits for a training step. The thread never calls
``torch.set_num_threads`` (process-global); it keeps the model tiny and yields with
``time.sleep`` between steps so other users of the process keep their CPU share.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from explainer.learning.corpus import ATTENTION_SENTENCE, PROBES, Corpus, facts_corpus
from explainer.learning.threads import one_core
from explainer.learning.tiny import (AttentionMap, NextTokenDistribution, TinyConfig, attention_map,
                                     build_tiny_gpt, encode_lines, generate_text, next_token_batch,
                                     next_token_distribution, next_token_loss, stream_loss)
from explainer.learning.tokenizer import build_tokenizer


@dataclass(frozen=True)
class Sample:
    """What the model writes after a prompt at one checkpoint."""

    prompt: str
    greedy: str
    sampled: str  # temperature 1.0, seeded by the step number


@dataclass(frozen=True)
class Checkpoint:
    step: int
    probes: tuple[NextTokenDistribution, ...]
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class TrainingSnapshot:
    """Everything the page shows about a training run at one moment."""

    step: int
    max_steps: int
    train_loss: tuple[float, ...]  # train_loss[i] = loss of step i + 1 (nats per token)
    heldout_loss: tuple[tuple[int, float], ...]  # (step, loss) every eval_every steps
    checkpoints: tuple[Checkpoint, ...]  # step 0, every eval_every steps, and the last step
    attention_before: AttentionMap  # at step 0
    attention_after: AttentionMap  # at the latest checkpoint
    running: bool
    finished: bool
    error: str | None = None

    @property
    def latest(self) -> Checkpoint:
        return self.checkpoints[-1]


class Trainer:
    """Trains a tiny GPT on a corpus; start/pause/resume/reset from any thread."""

    def __init__(self, corpus: Corpus | None = None, language: str = "en", config: TinyConfig = TinyConfig(),
                 max_steps: int = 600, eval_every: int = 25, probes: tuple[str, ...] | None = None,
                 attention_sentence: str | None = None, n_samples: int = 2,
                 tokenizer: PreTrainedTokenizerFast | None = None, pause_s: float = 0.0) -> None:
        self.corpus = corpus or facts_corpus(language)  # type: ignore[arg-type]
        lang = self.corpus.language
        self.config, self.max_steps, self.eval_every = config, max_steps, eval_every
        self.probes = probes or PROBES[lang]
        self.attention_sentence = attention_sentence or ATTENTION_SENTENCE[lang]
        self.n_samples, self.pause_s = n_samples, pause_s
        self.tokenizer = tokenizer or build_tokenizer(lang)
        self._train_stream = encode_lines(self.tokenizer, self.corpus.train)  # (N,)
        self._heldout_stream = encode_lines(self.tokenizer, self.corpus.heldout)  # (M,)
        self._model_lock = threading.Lock()  # serialises training steps (thread vs step())
        self._snap_lock = threading.Lock()  # only to swap the published snapshot
        self._go, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False  # True from start() until the thread's loop ends
        self._error: str | None = None
        self._build()
        self._publish()

    # ---- state -----------------------------------------------------------------
    def _build(self) -> None:
        """Fresh random model, optimizer and histories; checkpoint at step 0."""
        with one_core():
            self._build_state()

    def _build_state(self) -> None:
        self.model: GPT2LMHeadModel = build_tiny_gpt(len(self.tokenizer), self.config, self.tokenizer.pad_token_id)
        self.model.train()
        self._optim = torch.optim.AdamW(self.model.parameters(), lr=self.config.learning_rate,
                                        weight_decay=self.config.weight_decay)
        self._gen = torch.Generator().manual_seed(self.config.seed)
        self._step, self._error = 0, None
        self._losses: list[float] = []
        self._heldout: list[tuple[int, float]] = []
        self._checkpoints: list[Checkpoint] = []
        self._attn_before = self._attn_after = attention_map(self.model, self.tokenizer, self.attention_sentence)
        self._record()

    def _train_one(self) -> None:
        x, y = next_token_batch(self._train_stream, self.config.batch_size, self.config.block_size, self._gen)
        self.model.train()
        loss = next_token_loss(self.model, x, y)  # scalar
        self._optim.zero_grad(set_to_none=True)
        loss.backward()
        self._optim.step()
        self._step += 1
        self._losses.append(float(loss.detach()))
        if self._step % self.eval_every == 0 or self._step == self.max_steps:
            self._record()

    def _record(self) -> None:
        """Held-out loss, probe distributions, samples and attention at the current step."""
        m, tok, s = self.model, self.tokenizer, self._step
        if len(self._heldout_stream) > 1:
            self._heldout.append((s, stream_loss(m, self._heldout_stream, self.config.block_size)))
        probes = tuple(next_token_distribution(m, tok, p) for p in self.probes)
        samples = tuple(Sample(p, generate_text(m, tok, p, 8), generate_text(m, tok, p, 8, 1.0, seed=s))
                        for p in self.probes[:self.n_samples])
        self._checkpoints.append(Checkpoint(s, probes, samples))
        if s:
            self._attn_after = attention_map(m, tok, self.attention_sentence, step=s)
        self.model.train()

    def _publish(self) -> TrainingSnapshot:
        finished = self._step >= self.max_steps
        snap = TrainingSnapshot(
            step=self._step, max_steps=self.max_steps, train_loss=tuple(self._losses),
            heldout_loss=tuple(self._heldout), checkpoints=tuple(self._checkpoints),
            attention_before=self._attn_before, attention_after=self._attn_after,
            running=self._active and self._go.is_set() and not finished and not self._stop.is_set(),
            finished=finished, error=self._error)
        with self._snap_lock:
            self._snapshot = snap
        return snap

    # ---- public API --------------------------------------------------------------
    def snapshot(self) -> TrainingSnapshot:
        """The latest published state (cheap, thread-safe, never blocks on training)."""
        with self._snap_lock:
            return self._snapshot

    def copy_model(self) -> GPT2LMHeadModel:
        """A deep copy of the current model, taken between two training steps (safe while running)."""
        with self._model_lock:
            return copy.deepcopy(self.model).eval()

    def set_max_steps(self, max_steps: int) -> TrainingSnapshot:
        """Change how far the run goes (e.g. train further after it finished, then start())."""
        with self._model_lock:
            self.max_steps = max(int(max_steps), 1)
            return self._publish()

    def restore(self, state_dict: dict[str, torch.Tensor], step: int, train_loss: tuple[float, ...] = (),
                heldout_loss: tuple[tuple[int, float], ...] = ()) -> TrainingSnapshot:
        """Continue from saved weights: step 0 is this seed's fresh model, then the saved state at ``step``.

        The checkpoints in between are not saved, so the history shows step 0 and ``step`` only
        (plus the saved loss curves). The optimizer starts afresh.
        """
        self.stop()
        with self._model_lock:
            self._build()  # the seeded step-0 model: the same "before" as the original run
            self.model.load_state_dict(state_dict)
            self._optim = torch.optim.AdamW(self.model.parameters(), lr=self.config.learning_rate,
                                            weight_decay=self.config.weight_decay)
            self._step, self.max_steps = int(step), max(int(step), self.max_steps)
            self._losses = [float(x) for x in train_loss][:self._step]
            saved = [(int(s), float(v)) for s, v in heldout_loss if 0 < int(s) < self._step]
            self._heldout = self._heldout[:1] + saved  # keep this run's step-0 held-out loss
            with one_core():
                self._record()
            return self._publish()

    def step(self, n: int = 1) -> TrainingSnapshot:
        """Train n steps synchronously in the caller's thread (tests, benchmarks, notebooks)."""
        with self._model_lock, one_core():
            for _ in range(n):
                if self._step >= self.max_steps:
                    break
                self._train_one()
            return self._publish()

    def start(self) -> None:
        """Train in a daemon thread until max_steps (or resume if paused)."""
        self._go.set()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._active = True
            self._thread = threading.Thread(target=self._run, name="tiny-gpt-trainer", daemon=True)
            self._thread.start()
        with self._model_lock:  # a consistent snapshot: never half-way through a step
            self._publish()

    def pause(self) -> None:
        """Stop after the current step; the thread waits until resume()."""
        self._go.clear()
        with self._model_lock:  # wait for the step in progress so the snapshot is final
            self._publish()

    def resume(self) -> None:
        self.start()

    def stop(self) -> None:
        """End the background thread after its current step (the model and history are kept)."""
        self._stop.set()
        self._go.set()  # wake a paused thread so it can see the stop flag
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self._active = False
        self._go.clear()
        self._publish()

    def reset(self) -> None:
        """Stop training and go back to step 0 with the same seed (identical run)."""
        self.stop()
        with self._model_lock:
            self._build()
            self._publish()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background run ends; True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        with one_core():  # this thread only; see threads.py
            self._loop()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set() and self._step < self.max_steps:
                if not self._go.wait(timeout=0.2):
                    continue
                if self._stop.is_set():
                    break
                with self._model_lock:
                    if self._go.is_set() and self._step < self.max_steps:
                        self._train_one()
                        self._publish()
                time.sleep(self.pause_s)  # sleep(0) yields the GIL and the CPU between steps
        except Exception as exc:  # shown on the page instead of dying silently
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._model_lock:
                self._active = False
                self._publish()

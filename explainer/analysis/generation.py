"""Autoregressive generation, one token at a time, keeping every step's distribution.

Each step is one plain forward pass of the ids so far (no hooks, no KV cache: simple and
exactly what the other pages show), under the model's lock; the last position's logits go
through :mod:`explainer.analysis.prediction`, and the next token is the argmax (greedy) or a
seeded draw. The same seed and settings always give the same text.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from explainer.analysis.prediction import adjusted_probs, entropy_bits, sample, softmax_probs
from explainer.models import LoadedModel
from explainer.serving.remote import remotable
from explainer.tokens import legible, pending, token_pieces
from explainer.tracing import tokenize

MAX_NEW_TOKENS = 64
MAX_PROMPT_TOKENS = 256


@dataclass(frozen=True)
class GenerationSettings:
    """How the next token is chosen. Greedy ignores temperature, top-k and top-p."""

    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None        # None or 0: off
    top_p: float | None = None      # None or 1.0: off
    show: int = 10                  # how many candidates each step keeps for display


@dataclass(frozen=True)
class Step:
    """One generated token and the distribution it was chosen from."""

    index: int                      # 0 = the first new token
    chosen_id: int
    chosen_label: str
    chosen_prob: float              # in the softmax at temperature 1
    chosen_adjusted: float          # in the distribution actually sampled from (1.0 for greedy)
    top_ids: tuple[int, ...]        # candidates, most likely first (temperature-1 softmax)
    top_labels: tuple[str, ...]
    top_probs: tuple[float, ...]
    top_adjusted: tuple[float, ...]  # after the settings (0 = removed); greedy: 1 for the argmax
    entropy_bits: float
    kept: int                       # tokens still possible under the settings
    greedy: bool
    seed: int | None                # the step's own seed when sampling
    is_end: bool                    # the model chose its end-of-text token
    chosen_bytes: bytes = b""
    top_bytes: tuple[bytes, ...] = ()
    context: bytes = b""            # the bytes of a character left unfinished before this step

    def rows(self) -> dict[str, object]:
        return {"step": self.index + 1, "candidates": [[lab, p] for lab, p in zip(self.top_labels, self.top_probs)]}


@dataclass(frozen=True)
class SoFar:
    """What a page shows of a generation: the prompt and the steps so far."""

    prompt: str
    steps: tuple[Step, ...]

    @property
    def context(self) -> bytes:
        """The bytes of a character the prompt left unfinished (the first step continues it)."""
        return self.steps[0].context if self.steps else b""

    def rows(self) -> list[dict[str, object]]:
        return [{"step": s.index + 1, "token": s.chosen_label, "id": s.chosen_id, "probability": s.chosen_prob,
                 "entropy_bits": s.entropy_bits, "seed": s.seed} for s in self.steps]


@dataclass(frozen=True)
class Generation:
    prompt_ids: tuple[int, ...]
    steps: tuple[Step, ...]
    text: str                       # prompt + generated text, decoded together
    truncated: bool                 # the prompt was longer than MAX_PROMPT_TOKENS


def step_seed(seed: int, index: int) -> int:
    """The seed of step ``index``: a fixed function of the run's seed, so replays match."""
    return (int(seed) * 1_000_003 + int(index) * 7_919 + 17) % (2**31 - 1)


def prompt_ids(model: LoadedModel, text: str, max_tokens: int = MAX_PROMPT_TOKENS) -> tuple[list[int], bool]:
    """The prompt's ids for generation (its start), leaving room for MAX_NEW_TOKENS in the window."""
    room = model.context_length - MAX_NEW_TOKENS
    return tokenize(model, text, max(1, min(max_tokens, room)))


def next_token_logits(model: LoadedModel, ids: list[int]) -> torch.Tensor:
    """Logits for the token after ``ids``: one plain forward pass, (V,) float32 on the CPU."""
    input_ids = torch.tensor([ids], device=model.device)                  # (1, T)
    with model.lock, torch.inference_mode():
        out = model.hf_model(input_ids=input_ids, use_cache=False)
        return out.logits[0, -1].float().cpu()                           # (V,)


@remotable(lane="short")
def generate_step(model: LoadedModel, ids: list[int], settings: GenerationSettings, step_seed: int,
                  index: int = 0) -> Step:
    """Choose the token after ``ids`` under ``settings`` (``step_seed`` drives the draw)."""
    if not ids:
        raise ValueError("There is no text to continue.")
    if len(ids) >= model.context_length:
        raise ValueError(f"The text already fills the model's window of {model.context_length} tokens.")
    if len(ids) > MAX_PROMPT_TOKENS + MAX_NEW_TOKENS or any(not 0 <= int(i) < model.vocab_size for i in ids):
        raise ValueError(f"A step reads at most {MAX_PROMPT_TOKENS + MAX_NEW_TOKENS} ids of this model's vocabulary.")
    logits = next_token_logits(model, ids)
    base = softmax_probs(logits)                                          # (V,) float64
    if settings.greedy:
        chosen = int(torch.argmax(logits))
        adjusted = torch.zeros_like(base)
        adjusted[chosen] = 1.0
    else:
        adjusted = adjusted_probs(logits, settings.temperature, settings.top_k or None, settings.top_p)
        chosen = sample(adjusted, step_seed)
    top_probs, top_ids = torch.topk(base, min(settings.show, base.numel()))
    ids_shown = [int(i) for i in top_ids]
    before = list(ids[-4:])                                               # a character is at most 4 bytes
    pieces = token_pieces(model, before + ids_shown + [chosen])
    labels = tuple(legible(p) for p in pieces[len(before):])
    eos = getattr(model.tokenizer, "eos_token_id", None)
    return Step(
        index=index, chosen_id=chosen, chosen_label=labels[-1], chosen_prob=float(base[chosen]),
        chosen_adjusted=float(adjusted[chosen]), top_ids=tuple(ids_shown), top_labels=labels[:-1],
        top_probs=tuple(float(p) for p in top_probs), top_adjusted=tuple(float(adjusted[i]) for i in ids_shown),
        entropy_bits=entropy_bits(base), kept=int((adjusted > 0).sum()), greedy=settings.greedy,
        seed=None if settings.greedy else int(step_seed), is_end=eos is not None and chosen == eos,
        chosen_bytes=pieces[-1], top_bytes=tuple(pieces[len(before):-1]),
        context=pending(b"".join(pieces[:len(before)])))


def continue_generation(model: LoadedModel, ids: list[int], steps: list[Step], settings: GenerationSettings,
                        seed: int) -> Step:
    """The next step after ``steps`` (already generated after the prompt ``ids``)."""
    full = list(ids) + [s.chosen_id for s in steps]
    index = len(steps)
    return generate_step(model, full, settings, step_seed(seed, index), index)


def generate(model: LoadedModel, text: str, n_steps: int, settings: GenerationSettings = GenerationSettings(),
             seed: int = 0) -> Generation:
    """Generate up to ``n_steps`` (≤ MAX_NEW_TOKENS) tokens after ``text``; stops at end-of-text."""
    if not 1 <= n_steps <= MAX_NEW_TOKENS:
        raise ValueError(f"Choose between 1 and {MAX_NEW_TOKENS} new tokens, not {n_steps}.")
    ids, truncated = prompt_ids(model, text)
    steps: list[Step] = []
    for _ in range(n_steps):
        if len(ids) + len(steps) >= model.context_length:
            break
        step = continue_generation(model, ids, steps, settings, seed)
        steps.append(step)
        if step.is_end:
            break
    return Generation(tuple(ids), tuple(steps), decode(model, ids, steps), truncated)


def decode(model: LoadedModel, ids: list[int] | tuple[int, ...], steps: list[Step] | tuple[Step, ...],
           whole_characters: bool = False) -> str:
    """Prompt and generated tokens decoded together (characters split over tokens rejoin).

    ``whole_characters``: leave out a character whose bytes are not all generated yet (it would
    read "�"); it appears once the step that completes it is there.
    """
    with model.tokenizer_lock:
        text = model.tokenizer.decode(list(ids) + [s.chosen_id for s in steps])
    unfinished = whole_characters and steps and pending(steps[0].context + b"".join(s.chosen_bytes for s in steps))
    return text.rstrip("\ufffd") if unfinished else text

"""Which words of my text made the answer? Input attribution with Captum, on the token vectors.

What is attributed: the target's *probability* after the text. Not its logit: a logit carries a
shift shared by every token that the softmax ignores, so with the words taken away a token's
logit can rise while its probability falls to 0 (measured on SmolLM2: " Mary" after the
Mary/John sentence has a logit 5.2 *higher* at the baseline below). Its gap would then be
negative and its split meaningless. The probability's gap is "how likely the text made the
answer" (≈ p, since the baseline gives it ≈ 0), and integrated gradients converges on it in
fewer steps. (Direct logit attribution splits the logit because only the logit is additive.)

Over what: the token vectors as the first block reads them (the embedding module's output;
Gemma 3's includes its √d scale), passed to the model as ``inputs_embeds``. GPT-2 adds its
learned positions inside the model, so positions are held as they are. Nothing is registered
on the shared model and nothing in it changes: the model is only called, with gradients
flowing to our own input tensor (its parameters keep ``requires_grad=False``). That is why
Captum's ``IntegratedGradients`` / ``InputXGradient`` / ``FeatureAblation`` run on a plain
function of the vectors here, rather than ``LayerIntegratedGradients`` or
``LLMGradientAttribution`` (built on it), which put hooks on the embedding module of the model
every session shares, or ``LLMAttribution``, which perturbs token ids (a baseline *token*, not
a vector) and calls the shared, thread-unsafe tokenizer itself.

The baseline ("the text without its words"): every token vector set to 0 except the first
token's, which stays as it is. Every causal LM parks most of its attention on the first
position (an attention sink), so an all-zero input is a dead model rather than a neutral one
(an RMSNorm model's logits are then exactly 0). The first token is therefore part of the
baseline and always scores 0. Zeros rather than padding tokens: both give the answer a
probability ≈ 0, but with padding its logit stays near its full value (RECIPES) and
integrated gradients needs more points (measured on SmolLM2, 64 points: 24 % off with
padding, 9 % with zeros; the average token vector: 34 %). All three methods share this
baseline: they attribute the same function of ``x − baseline``.

- ``integrated_gradients``: ∫ ∇p along the straight path from the baseline, times
  ``x − baseline`` (Captum's Gauss–Legendre points); complete: the scores add up to
  ``output − baseline_output``. :data:`IG_STEPS` points keep that within 1 % on the prompts
  measured; by default a result further off than 5 % is computed again with twice the points.
- ``gradient_x_input``: ∇p at the text times ``x − baseline``; one pass, a local picture.
- ``occlusion``: ``output`` minus the probability with that one token's vector set to the baseline.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from explainer.analysis.attribution_targets import resolve_target
from explainer.budget import check_fits
from explainer.cache import ByteLRU
from explainer.models import LoadedModel
from explainer.serving.remote import remotable
from explainer.tokens import legible, token_bytes
from explainer.tracing import tokenize

Progress = Callable[[float, str], None]
METHODS = ("integrated_gradients", "gradient_x_input", "occlusion")
IG_STEPS = 96                      # measured (README, "Why this answer?"): ≤ 1 % off on SmolLM2 and Gemma 3
REFINE_UP_TO = 4 * IG_STEPS        # default steps double (at most to this) while the sum is > 5 % off
COMPLETE_WITHIN = 0.05
MAX_STEPS = 1024
MAX_TOKENS = 256                   # longer texts are refused: the cost grows with steps × tokens
TOKENS_PER_BATCH = 256             # path points are run in batches of about this many tokens
AT_ONCE = 2                        # attributions running at the same time; the rest wait (memory, cores)
KEPT = (0,)                        # positions that keep their vector in the baseline


@dataclass(frozen=True)
class InputAttribution:
    """One score per input token: how much it moved the target's probability (see the module doc)."""

    scores: np.ndarray             # (T,) float64, read-only; KEPT positions are 0
    tokens: tuple[str, ...]        # legible token labels
    token_ids: tuple[int, ...]
    output: float                  # the target's probability after the text
    baseline_output: float         # the same after the baseline (only the first token kept)
    method: str
    target: int
    steps: int | None              # integrated gradients: points on the path (after any refinement)
    kept: tuple[int, ...] = KEPT
    pieces: tuple[bytes, ...] = ()  # each token's bytes (characters split over tokens are drawn whole)

    @property
    def gap(self) -> float:
        """``output − baseline_output``: what integrated gradients' scores add up to."""
        return self.output - self.baseline_output

    @property
    def completeness_error(self) -> float:
        """``|Σ scores − gap| / |gap|`` (integrated gradients: under 0.05 by default)."""
        return abs(float(self.scores.sum()) - self.gap) / max(abs(self.gap), 1e-12)

    def rows(self) -> list[dict]:
        """One plain dict per token (for CSV/JSON): position, token, token_id, score."""
        return [{"position": i, "token": tok, "token_id": tid, "score": float(s)}
                for i, (tok, tid, s) in enumerate(zip(self.tokens, self.token_ids, self.scores))]


def input_attribution(model: LoadedModel, text: str, target: int | str | None = None,
                      method: str = "integrated_gradients", steps: int | None = None,
                      progress: Progress | None = None, max_tokens: int = MAX_TOKENS) -> InputAttribution:
    """Score every token of ``text`` for the target's probability after it (default: the top prediction).

    ``method``: one of :data:`METHODS`. ``steps`` (integrated gradients only): points on the path;
    None means :data:`IG_STEPS`, doubled while the scores' sum is more than 5 % off (up to
    :data:`REFINE_UP_TO`); a number is used as given. ``progress(fraction, message)`` is called
    as batches finish. At most :data:`AT_ONCE` run at a time (others wait, and ``progress`` says
    so). Recent results are remembered; the shared model is never changed.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
    _check_steps(steps)
    ids, truncated = tokenize(model, text, max_tokens)
    if truncated:
        raise ValueError(f"Input attribution reads at most {max_tokens} tokens and this text is longer; "
                         "shorten it (the cost grows with every token).")
    target_id = None if target is None else resolve_target(model, target)
    key = (weakref.ref(model), text, max_tokens, target_id, method, steps)
    found, computed = _recent.get_or_compute_flagged(
        key, lambda: attribute_ids(model, ids, target_id, method, steps, progress))
    if not computed and progress is not None:
        progress(1.0, "done")
    return found


def _check_ids(model: LoadedModel, ids: list[int], target: int | None) -> None:
    if not ids or len(ids) > MAX_TOKENS or any(not 0 <= int(i) < model.vocab_size for i in ids) or \
            (target is not None and not 0 <= int(target) < model.vocab_size):
        raise ValueError(f"Input attribution needs 1 to {MAX_TOKENS} token ids (and a target) of this model's vocabulary.")


def _check_steps(steps: int | None) -> None:
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS):
        raise ValueError(f"steps must be a whole number from 2 to {MAX_STEPS}, not {steps!r}.")


@remotable
def attribute_ids(model: LoadedModel, ids: list[int], target: int | None, method: str, steps: int | None,
                  progress: Progress | None = None) -> InputAttribution:
    """:func:`input_attribution` on token ids (checked), not remembered; on the cluster when there is one."""
    _check_ids(model, ids, target)
    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
    _check_steps(steps)
    T = len(ids)
    batch = max(1, TOKENS_PER_BATCH // T)
    check_fits(_grad_bytes(model, T, batch), "attributing this text")
    with model.tokenizer_lock:                                    # the shared tokenizer is not thread-safe
        pieces = tuple(token_bytes(model.tokenizer, ids))
    # No model lock from here on: the model is only called (no hooks, no state), which is safe
    # beside other sessions; holding the lock for seconds would stall every trace in the class.
    # A few slots instead bound the memory (activations kept for gradients) when a class asks at once.
    if not _slots.acquire(blocking=False):
        if progress is not None:
            progress(0.0, "waiting for other attributions to finish")
        _slots.acquire()
    try:
        return _attribute_now(model, ids, pieces, target, method, steps, progress, batch)
    finally:
        _slots.release()


_slots = threading.BoundedSemaphore(AT_ONCE)


def _attribute_now(model: LoadedModel, ids: list[int], pieces: tuple[bytes, ...], target: int | None, method: str,
                   steps: int | None, progress: Progress | None, batch: int) -> InputAttribution:
    with torch.inference_mode(False), torch.enable_grad():
        x, base = _vectors(model, ids)                                     # (1, T, d) each
        ends = _probabilities(model, torch.cat([x, base]))                 # (2, V)
        target = int(ends[0].argmax()) if target is None else target
        gap = float(ends[0, target] - ends[1, target])
        f = _Probability(model, base, target, progress)
        if method != "integrated_gradients":
            scores = _METHOD_RUNNERS[method](f, x - base, batch)          # (T,)
        else:
            scores, steps = _integrated_gradients(f, x - base, batch, steps, gap)
    scores[list(KEPT)] = 0.0                                               # what the math gives, without float noise
    return InputAttribution(_read_only(scores), tuple(legible(b) for b in pieces), tuple(int(i) for i in ids),
                            float(ends[0, target]), float(ends[1, target]), method, target, steps, KEPT, pieces)


def _vectors(model: LoadedModel, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The token vectors the first block reads (1, T, d), and the baseline (only KEPT positions kept)."""
    with torch.no_grad():
        x = model.arch.token_embedding(model.hf_model)(torch.tensor([ids], device=model.device))
    x = x.detach().float().clone()                                         # (1, T, d) ours, not the model's
    base = torch.zeros_like(x)
    base[:, list(KEPT)] = x[:, list(KEPT)]
    return x, base


def _probabilities(model: LoadedModel, vectors: torch.Tensor) -> torch.Tensor:
    """Next-token probabilities (B, V) after token vectors (B, T, d), without gradients."""
    with torch.no_grad():
        logits = model.hf_model(inputs_embeds=vectors, use_cache=False, logits_to_keep=1).logits[:, -1]
        return torch.softmax(logits.float(), dim=-1)


class _Probability:
    """f(δ) = the target's probability after the vectors ``baseline + δ`` (B, T, d) → (B,).

    Counts what it has evaluated, for ``progress``; :meth:`expect` sets the total of a round.
    """

    def __init__(self, model: LoadedModel, base: torch.Tensor, target: int, progress: Progress | None) -> None:
        self.model, self.base, self.target, self.progress = model, base, target, progress
        self.total, self.done, self.label = 1, 0, ""

    def expect(self, total: int, label: str = "") -> None:
        self.total, self.done, self.label = max(1, total), 0, label

    def __call__(self, delta: torch.Tensor) -> torch.Tensor:
        logits = self.model.hf_model(inputs_embeds=self.base + delta, use_cache=False, logits_to_keep=1).logits
        self.done += delta.shape[0]
        if self.progress is not None:
            done = min(self.done, self.total)
            self.progress(done / self.total, f"{self.label}{done}/{self.total}")
        return torch.softmax(logits[:, -1].float(), dim=-1)[:, self.target]   # (B,)


def _integrated_gradients(f: _Probability, delta: torch.Tensor, batch: int, steps: int | None,
                          gap: float) -> tuple[torch.Tensor, int]:
    """IG scores (T,) and the steps used: as asked, or IG_STEPS doubled while > 5 % incomplete."""
    from captum.attr import IntegratedGradients                           # imports matplotlib: slow, so late

    n, refine = (IG_STEPS, True) if steps is None else (steps, False)
    while True:
        f.expect(n, "" if n == (steps or IG_STEPS) else "more steps for accuracy: ")
        attr = IntegratedGradients(f).attribute(delta, baselines=0.0, n_steps=n, method="gausslegendre",
                                                internal_batch_size=batch)  # (1, T, d)
        scores = attr[0].sum(-1).double()
        off = abs(float(scores.sum()) - gap) > COMPLETE_WITHIN * abs(gap)
        if not (refine and off and 2 * n <= REFINE_UP_TO):
            return scores, n
        n *= 2


def _gradient_x_input(f: _Probability, delta: torch.Tensor, batch: int) -> torch.Tensor:
    from captum.attr import InputXGradient

    f.expect(1)
    return InputXGradient(f).attribute(delta.clone().requires_grad_())[0].sum(-1).double()   # (T,)


def _occlusion(f: _Probability, delta: torch.Tensor, batch: int) -> torch.Tensor:
    from captum.attr import FeatureAblation

    T = delta.shape[1]
    f.expect(T + 1)                                                        # the text, then each token removed
    groups = torch.arange(T, device=delta.device).view(1, T, 1)            # one group per token
    with torch.no_grad():
        attr = FeatureAblation(f).attribute(delta, baselines=0.0, feature_mask=groups,
                                            perturbations_per_eval=batch)  # (1, T, d): a token's value on each dim
    return attr[0, :, 0].double()


_METHOD_RUNNERS = {"gradient_x_input": _gradient_x_input, "occlusion": _occlusion}



def _grad_bytes(model: LoadedModel, T: int, batch: int) -> int:
    """Rough peak bytes of one batch with gradients: activations kept for the backward pass."""
    per_token_layer = 16 * model.d_model + 6 * model.d_mlp + 2 * model.n_heads * T
    return 4 * batch * T * model.n_layers * per_token_layer + 8 * batch * model.vocab_size


def _read_only(values: torch.Tensor) -> np.ndarray:
    out = values.detach().cpu().numpy().astype(np.float64)
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------- recent results


# The last 128 results, one entry each, keyed by a weak reference to the model first (a dropped
# model's results are not kept alive by it; they fall out like any old entry); single flight.
_recent: ByteLRU[InputAttribution] = ByteLRU(128, size_of=lambda result: 1)


def forget(model: LoadedModel) -> None:
    """Drop the remembered input attributions of ``model`` (tests and benchmarks)."""
    _recent.drop(lambda key: key[0]() is model)

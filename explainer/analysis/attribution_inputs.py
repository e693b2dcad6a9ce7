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
  ``x − baseline``; complete: the scores add up to ``output − baseline_output``. By default the
  path is integrated in segments refined where they miss (:mod:`.attribution_paths`), until the
  sum is within 1 % or the time budget (``budget_s``) or :data:`MAX_STEPS` points are spent; the
  result says how it stopped, and ``refine=`` continues it. ``steps=n``: one Gauss–Legendre rule of
  ``n`` points over the whole path, as Captum computes it (for comparisons).
- ``gradient_x_input``: ∇p at the text times ``x − baseline``; one pass, a local picture.
- ``occlusion``: ``output`` minus the probability with that one token's vector set to the baseline.
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from explainer.analysis import attribution_paths as paths
from explainer.analysis.attribution_function import Probability, probabilities, vectors
from explainer.analysis.attribution_targets import resolve_target
from explainer.budget import check_fits
from explainer.cache import ByteLRU
from explainer.devices import host, to_device
from explainer.models import LoadedModel
from explainer.serving.remote import remotable
from explainer.token_text import TokenText
from explainer.tracing import tokenize

Progress = Callable[[float, str], None]
METHODS = ("integrated_gradients", "gradient_x_input", "occlusion")
COMPLETE_WITHIN = 0.05             # the target the page holds the scores to (and says when missed)
BUDGET_S = 15.0                    # integrated gradients stop refining after this long (measured: README)
MAX_BUDGET_S = 600.0               # the longest budget anyone may ask for (a worker's request)
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
    steps: int | None              # integrated gradients: gradient points evaluated on the path
    kept: tuple[int, ...] = KEPT
    pieces: tuple[bytes, ...] = ()  # each token's bytes (characters split over tokens are drawn whole)
    stopped: str = "complete"      # integrated gradients: "complete", "budget" (time) or "points"
    seconds: float = 0.0           # time spent computing (all refinements together)
    path: paths.PathIntegral | None = None   # the segments, to continue with ``refine=``

    @property
    def missed(self) -> bool:
        """Integrated gradients whose scores are further than 5 % from adding up."""
        return self.method == "integrated_gradients" and self.completeness_error > COMPLETE_WITHIN

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
                      progress: Progress | None = None, max_tokens: int = MAX_TOKENS, budget_s: float = BUDGET_S,
                      refine: InputAttribution | None = None) -> InputAttribution:
    """Score every token of ``text`` for the target's probability after it (default: the top prediction).

    ``method``: one of :data:`METHODS`. Integrated gradients: ``steps=None`` refines segments of
    the path until the scores add up within 1 %, for at most ``budget_s`` seconds and
    :data:`MAX_STEPS` points; ``refine=`` an earlier such result continues it for another
    ``budget_s``; ``steps=n`` is one rule of ``n`` points, as given. ``progress(fraction, message)``
    is called as batches finish (and may raise to stop the work). At most :data:`AT_ONCE` run at
    a time (others wait, and ``progress`` says so). Recent results (not continuations) are remembered;
    the shared model is never changed.
    """
    ids, truncated = tokenize(model, text, max_tokens)
    if truncated:
        raise ValueError(f"Input attribution reads at most {max_tokens} tokens and this text is longer; "
                         "shorten it (the cost grows with every token).")
    target_id = None if target is None else resolve_target(model, target)
    _check(model, ids, target_id, method, steps, budget_s, refine)
    if refine is not None:                                # a continuation is computed every time it is asked
        return attribute_ids(model, ids, target_id, method, steps, progress, budget_s, refine)
    key = (weakref.ref(model), text, max_tokens, target_id, method, steps, budget_s)
    found, computed = _recent.get_or_compute_flagged(
        key, lambda: attribute_ids(model, ids, target_id, method, steps, progress, budget_s))
    if not computed and progress is not None:
        progress(1.0, "done")
    return found


def _check(model: LoadedModel, ids: list[int], target: int | None, method: str, steps: int | None,
           budget_s: float, refine: InputAttribution | None) -> None:
    """A request as anyone could send it (a worker checks it again): every refusal, with its reason."""
    if not ids or len(ids) > MAX_TOKENS or any(not 0 <= int(i) < model.vocab_size for i in ids) or \
            (target is not None and not 0 <= int(target) < model.vocab_size):
        raise ValueError(f"Input attribution needs 1 to {MAX_TOKENS} token ids (and a target) of this model's vocabulary.")
    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS):
        raise ValueError(f"steps must be a whole number from 2 to {MAX_STEPS}, not {steps!r}.")
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not 0 <= budget_s <= MAX_BUDGET_S:
        raise ValueError(f"budget_s must be a number of seconds from 0 to {MAX_BUDGET_S:g}, not {budget_s!r}.")
    if refine is not None and (refine.path is None or steps is not None):
        raise ValueError("refine= continues an integrated-gradients result computed with steps=None.")
    if refine is not None and (tuple(ids) != refine.token_ids or target not in (None, refine.target) or
                               any(s.scores.shape != (len(ids),) for s in refine.path.segments)):
        raise ValueError("refine= continues a result for the same text and target.")


@remotable
def attribute_ids(model: LoadedModel, ids: list[int], target: int | None, method: str, steps: int | None,
                  progress: Progress | None = None, budget_s: float = BUDGET_S,
                  refine: InputAttribution | None = None) -> InputAttribution:
    """:func:`input_attribution` on token ids (checked again: a worker reads what anyone could send),
    not remembered; on the cluster when there is one (``refine`` travels with its path)."""
    _check(model, ids, target, method, steps, budget_s, refine)
    T = len(ids)
    batch = max(1, TOKENS_PER_BATCH // T)
    check_fits(_grad_bytes(model, T, batch), "attributing this text", model.device)
    text = TokenText(ids, model)                                  # shared with a trace of the same ids
    # No model lock from here on: the model is only called (no hooks, no state), which is safe
    # beside other sessions; holding the lock for seconds would stall every trace in the class.
    # A few slots instead bound the memory (activations kept for gradients) when a class asks at once.
    if not _slots.acquire(blocking=False):
        if progress is not None:
            progress(0.0, "waiting for other attributions to finish")
        _slots.acquire()
    began = time.monotonic()
    try:
        result = _attribute_now(model, ids, text, target if refine is None else refine.target, method, steps,
                                progress, batch, budget_s, refine)
    finally:
        _slots.release()
    return replace(result, seconds=time.monotonic() - began + (refine.seconds if refine is not None else 0.0))


_slots = threading.BoundedSemaphore(AT_ONCE)


def _attribute_now(model: LoadedModel, ids: list[int], text: TokenText, target: int | None, method: str,
                   steps: int | None, progress: Progress | None, batch: int, budget_s: float,
                   refine: InputAttribution | None) -> InputAttribution:
    with torch.inference_mode(False), torch.enable_grad():
        x, base = vectors(model, ids, KEPT)                                # (1, T, d) each
        ends = probabilities(model, torch.cat([x, base]))                  # (2, V) on the model's device
        target = int(ends[0].argmax()) if target is None else target
        output, baseline = host(ends[:, target]).tolist()                  # one read back for both
        f = Probability(model, base, target, progress)
        path, stopped = None, "complete"
        if method != "integrated_gradients":
            scores = _METHOD_RUNNERS[method](f, x - base, batch)          # (T,)
        elif steps is not None:
            scores = _integrated_gradients(f, x - base, batch, steps)
        else:
            path = _adaptive(f, x - base, batch, output, baseline, budget_s, refine, progress)
            scores, steps, stopped = path.scores, path.points, path.stopped
    return InputAttribution(_read_only(scores), text.labels, tuple(int(i) for i in ids),
                            output, baseline, method, target, steps, KEPT, text.pieces, stopped, 0.0, path)


def _integrated_gradients(f: Probability, delta: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """IG scores (T,) with one Gauss–Legendre rule of ``steps`` points over the whole path."""
    from captum.attr import IntegratedGradients                           # imports matplotlib: slow, so late

    f.expect(steps)
    attr = IntegratedGradients(f).attribute(delta, baselines=0.0, n_steps=steps, method="gausslegendre",
                                            internal_batch_size=batch)  # (1, T, d)
    return attr[0].sum(-1).double()


def _adaptive(f: Probability, delta: torch.Tensor, batch: int, output: float, baseline: float, budget_s: float,
              refine: InputAttribution | None, progress: Progress | None) -> paths.PathIntegral:
    """IG in segments refined where they miss (:mod:`.attribution_paths`), from scratch or continued."""
    from captum.attr import IntegratedGradients

    k = paths.POINTS_PER_SEGMENT

    def gradients(segments: list[tuple[float, float]]) -> torch.Tensor:
        rows = []
        for i in range(0, len(segments), batch):                          # at most `batch` segments a call
            chunk = to_device(torch.tensor(segments[i:i + batch], dtype=delta.dtype), delta.device)   # (S, 2)
            start, stop = chunk[:, :1, None] * delta, chunk[:, 1:, None] * delta                  # (S, T, d)
            attr = IntegratedGradients(f).attribute(stop, baselines=start, n_steps=k, method="gausslegendre",
                                                    internal_batch_size=max(batch, len(chunk)))
            rows.append(attr.sum(-1).double())                                                   # (S, T)
        return host(torch.cat(rows))                      # one read back a round: segments' sums are on the host

    def ends(alphas: list[float]) -> list[float]:
        with torch.no_grad():
            a = to_device(torch.tensor(alphas, dtype=delta.dtype), delta.device).view(-1, 1, 1)
            return host(f.values(a * delta)).tolist()

    def tick(fraction: float) -> None:
        f.fraction = fraction
        if progress is not None:
            progress(fraction, f"{f.done} points")

    f.expect(MAX_STEPS, quiet=True, budget_s=budget_s)
    return paths.integrate(gradients, ends, output - baseline, paths.TOLERANCE, MAX_STEPS, budget_s,
                           start=None if refine is None else refine.path, tick=tick, k=k,
                           known={0.0: baseline, 1.0: output})


def _gradient_x_input(f: Probability, delta: torch.Tensor, batch: int) -> torch.Tensor:
    from captum.attr import InputXGradient

    f.expect(1)
    return InputXGradient(f).attribute(delta.clone().requires_grad_())[0].sum(-1).double()   # (T,)


def _occlusion(f: Probability, delta: torch.Tensor, batch: int) -> torch.Tensor:
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
    """Scores (T,) on the host, KEPT positions 0 (what the math gives, without float noise)."""
    out = host(values).numpy().astype(np.float64)
    out[list(KEPT)] = 0.0
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------- recent results


# The last 128 results, one entry each, keyed by a weak reference to the model first (a dropped
# model's results are not kept alive by it; they fall out like any old entry); single flight.
_recent: ByteLRU[InputAttribution] = ByteLRU(128, size_of=lambda result: 1)


def forget(model: LoadedModel) -> None:
    """Drop the remembered input attributions of ``model`` (tests and benchmarks)."""
    _recent.drop(lambda key: key[0]() is model)


def forget_all() -> None:
    """Drop every remembered input attribution (tests and benchmarks)."""
    _recent.drop(lambda key: True)

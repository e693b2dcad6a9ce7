"""Where is the answer decided? Activation patching.

Run a clean prompt ("The Eiffel Tower is in the city of") and a corrupted one of the same length
that differs in a word ("The Colosseum is in the city of"), then run the corrupted prompt again
once per cell with one activation copied from the clean run, and see how much of the clean answer
comes back. The metric is the logit difference after the last token,
``diff = logit(answer) − logit(contrast)``, and each cell's score is

    score = (diff_patched − corrupted_diff) / (clean_diff − corrupted_diff)

so 1 means "the clean answer fully restored" and 0 "no effect" (it may fall below 0 or rise above 1).
By default ``answer`` is the clean run's top prediction and ``contrast`` the corrupted run's (or
its best token other than ``answer``).

Sites (:mod:`explainer.analysis.patching_runs` says how each is hooked):

- ``resid_pre[l, p]``: the residual stream entering block ``l`` at position ``p`` (``l = 0``: what
  the first block reads: token vectors, GPT-2's positions added, Gemma's √d scale applied);
- ``attn_out[l, p]``, ``mlp_out[l, p]``: what block ``l``'s attention / MLP adds to the residual
  at ``p`` (for Gemma 3 after its post-norms);
- ``heads[l, h]``: head ``h`` of layer ``l`` at every position: its slice of the input to the
  attention output projection.

Every number is a real patched forward pass of the model (no approximation). Positions before
the first token where the prompts differ hold the same activations in both runs, so patching
them changes nothing: they score exactly 0 without being run.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from explainer.analysis.attribution_targets import resolve_target
from explainer.analysis.patching_runs import SITES, Patch, Progress, Sources, patched, sources, sweep, unembedding_rows
from explainer.cache import ByteLRU
from explainer.models import LoadedModel
from explainer.serving import travels
from explainer.serving.remote import remotable
from explainer.tokens import token_labels
from explainer.tracing import tokenize

__all__ = ["MAX_TOKENS", "SITES", "Patch", "PatchedPrediction", "PatchingError", "PatchingResult",
           "activation_patching", "pair_prediction", "patched_prediction"]

MAX_TOKENS = 32          # the longest prompt pair: the cost grows with layers × tokens²


@travels
class PatchingError(ValueError):
    """A pair that cannot be patched. ``reason`` says why, for a page to word in its language:

    - ``"empty"``: ``which`` prompt ("clean" or "corrupted") has no text;
    - ``"too_long"``: ``which`` prompt has ``counts`` tokens, over ``cap``;
    - ``"lengths"``: different token counts ``counts`` = (clean, corrupted); ``parts`` = the tokens
      where they differ (clean, corrupted), to suggest a word of the same length;
    - ``"same"``: both prompts are the same tokens;
    - ``"same_answer"``: the answer and the contrast are one token (``parts`` its label);
    - ``"no_gap"``: both runs give the answer the same lead over the contrast (nothing to restore).
    """

    WIRE_FIELDS = ("reason", "which", "counts", "cap", "parts")     # what comes back from a cluster with it

    def __init__(self, message: str, reason: str, which: str = "", counts: tuple[int, ...] = (), cap: int = 0,
                 parts: tuple[tuple[str, ...], ...] = ()) -> None:
        super().__init__(message)
        self.reason, self.which, self.counts, self.cap, self.parts = reason, which, counts, cap, parts


@dataclass(frozen=True)
class PatchingResult:
    """One site's map. ``scores`` and ``diffs`` (the patched runs' logit differences) are
    (n_layers, n_tokens) for ``resid_pre``, ``attn_out`` and ``mlp_out``, (n_layers, n_heads) for ``heads``."""

    site: str
    scores: np.ndarray
    diffs: np.ndarray
    answer: int                       # token ids
    contrast: int
    clean_diff: float                 # logit(answer) − logit(contrast) after the clean prompt
    corrupted_diff: float             # … after the corrupted prompt
    tokens: tuple[str, ...]           # the clean prompt's tokens (legible)
    corrupted_tokens: tuple[str, ...]
    answer_label: str
    contrast_label: str
    probs: tuple[tuple[float, float], tuple[float, float]]   # (answer, contrast) × (clean, corrupted)
    first_diff: int                   # the first position where the prompts differ
    clean: str = ""
    corrupted: str = ""

    @property
    def by_position(self) -> bool:
        return self.site != "heads"

    def strongest(self, k: int = 3) -> list[tuple[int, int]]:
        """The ``k`` cells (layer, position or head) that bring back the most of the clean answer (the
        largest scores), strongest first."""
        order = np.argsort(-self.scores, axis=None, kind="stable")[:max(0, k)]
        return [tuple(int(i) for i in np.unravel_index(j, self.scores.shape)) for j in order]

    def rows(self) -> list[dict]:
        """One plain dict per cell (for CSV/JSON): site, layer, position or head, tokens, logit_diff, score."""
        out = []
        for layer in range(self.scores.shape[0]):
            for i in range(self.scores.shape[1]):
                where = ({"position": i, "token": self.tokens[i], "corrupted_token": self.corrupted_tokens[i]}
                         if self.by_position else {"head": i})
                out.append({"site": self.site, "layer": layer, **where, "logit_diff": float(self.diffs[layer, i]),
                            "score": float(self.scores[layer, i])})
        return out


def activation_patching(model: LoadedModel, clean: str, corrupted: str, site: str | Sequence[str] = "resid_pre",
                        answer: int | str | None = None, contrast: int | str | None = None,
                        progress: Progress | None = None, max_tokens: int = MAX_TOKENS
                        ) -> PatchingResult | dict[str, PatchingResult]:
    """Patch every cell of ``site`` from the ``clean`` run into the ``corrupted`` run (see the module doc).

    ``site``: one of :data:`SITES` → a :class:`PatchingResult`; several (or ``"all"``) → a dict of
    them by site, sharing the clean and corrupted runs. ``answer``/``contrast``: token ids or texts
    (:func:`resolve_target`). ``progress(fraction, message)`` is called as batches finish; raising
    from it cancels. Bad pairs raise :class:`PatchingError`; recent results are remembered, and a
    pair asked for by many at once is computed once (all of them see its progress).
    """
    sites = _sites(site)
    clean_ids, corrupted_ids = check_pair(model, clean, corrupted, max_tokens)
    answer = None if answer is None else resolve_target(model, answer)
    contrast = None if contrast is None else resolve_target(model, contrast)
    if answer is not None and answer == contrast:
        raise _same_answer(model, answer)
    key = (weakref.ref(model), clean, corrupted, answer, contrast, sites)
    found = _recent.get_or_compute_shared(key, lambda report: patch_ids(model, clean_ids, corrupted_ids, sites, answer,
                                                                        contrast, report, (clean, corrupted)), progress)
    return found[site] if isinstance(site, str) and site != "all" else found


def _sites(site: str | Sequence[str]) -> tuple[str, ...]:
    sites = SITES if site == "all" else (site,) if isinstance(site, str) else tuple(site)
    bad = [s for s in sites if s not in SITES]
    if bad or not sites:
        raise ValueError(f"Unknown patching site {bad[0] if bad else site!r}; choose from {', '.join(SITES)} or 'all'.")
    return tuple(dict.fromkeys(sites))


def check_pair(model: LoadedModel, clean: str, corrupted: str, max_tokens: int = MAX_TOKENS) -> tuple[list, list]:
    """The two prompts' token ids, or a :class:`PatchingError` that says what is wrong with the pair."""
    ids = {}
    for which, text in (("clean", clean), ("corrupted", corrupted)):
        if not isinstance(text, str):
            raise TypeError(f"The {which} prompt must be text (str), not {type(text).__name__}.")
        if not text.strip():
            raise PatchingError(f"The {which} prompt is empty. Type a sentence.", "empty", which)
        found, cut = tokenize(model, text, max(4 * max_tokens, 256))
        if cut or len(found) > max_tokens:
            n = len(found)
            raise PatchingError(f"The {which} prompt is {'over ' if cut else ''}{n} tokens; patching reads at most "
                                f"{max_tokens}. Shorten it.", "too_long", which, (n,), max_tokens)
        ids[which] = found
    a, b = ids["clean"], ids["corrupted"]
    if a == b:
        raise PatchingError("The two prompts are the same tokens; change a word in the corrupted one.", "same")
    if len(a) != len(b):
        parts = differing(model, a, b)
        raise PatchingError(
            f"The clean prompt is {len(a)} tokens and the corrupted one {len(b)}; patching copies position by "
            f"position, so both need the same count. Where they differ, {'+'.join(parts[0]) or '(nothing)'} is "
            f"{len(parts[0])} tokens and {'+'.join(parts[1]) or '(nothing)'} {len(parts[1])}: use a word of "
            f"{len(parts[0])} tokens instead.", "lengths", counts=(len(a), len(b)), parts=parts)
    return a, b


def differing(model: LoadedModel, a: Sequence[int], b: Sequence[int]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tokens between the common start and the common end of two id lists (legible), each side."""
    start = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    end = 0
    while end < min(len(a), len(b)) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    return token_labels(model, a[start:len(a) - end]), token_labels(model, b[start:len(b) - end])


def _same_answer(model: LoadedModel, token: int) -> PatchingError:
    label = token_labels(model, [token])[0]
    return PatchingError(f"The answer and the contrast are the same token ('{label}'); pick two different ones.",
                         "same_answer", parts=((label,),))


@remotable
def patch_ids(model: LoadedModel, clean_ids: list, corrupted_ids: list, sites: tuple[str, ...], answer: int | None,
              contrast: int | None, progress: Progress | None, texts: tuple[str, str]) -> dict[str, PatchingResult]:
    """The sweep on checked token ids (:func:`activation_patching`), on the cluster when there is one."""
    _check_ids(model, clean_ids, corrupted_ids, sites, answer, contrast)
    src = _sources(model, clean_ids, corrupted_ids)
    answer, contrast = _defaults(model, src, answer, contrast)
    read = unembedding_rows(model, [answer, contrast])                                 # (2, d[+1])
    first = next(i for i, (x, y) in enumerate(zip(clean_ids, corrupted_ids)) if x != y)
    T, n, H = len(clean_ids), model.n_layers, model.n_heads
    plan: dict[int, list[Patch]] = {}
    for site in sites:
        if site == "heads":
            plan.setdefault(first, []).extend(Patch(site, l, h) for l in range(n) for h in range(H))
        else:
            for p in range(first, T):
                plan.setdefault(p, []).extend(Patch(site, l, p) for l in range(n))
    ends = src.logits[:, [answer, contrast]].double()                                  # (2 runs, 2 tokens)
    clean_diff, corrupted_diff = (float(ends[r, 0] - ends[r, 1]) for r in (0, 1))
    if abs(clean_diff - corrupted_diff) < 1e-6 * max(1.0, abs(clean_diff)):          # refused before any sweep
        raise PatchingError("Both prompts give the answer the same lead over the contrast, so there is nothing "
                            "to restore; pick a corrupted word that changes the answer.", "no_gap")
    logits = sweep(model, src, corrupted_ids, plan, read, progress)                    # {patch: (2,)}
    probs = torch.softmax(src.logits.double(), -1)[:, [answer, contrast]].T            # (2 tokens, 2 runs)
    labels = token_labels(model, [answer, contrast, *clean_ids, *corrupted_ids])
    common = dict(answer=answer, contrast=contrast, clean_diff=clean_diff, corrupted_diff=corrupted_diff,
                  tokens=labels[2:2 + T], corrupted_tokens=labels[2 + T:], answer_label=labels[0],
                  contrast_label=labels[1], probs=tuple(tuple(float(v) for v in row) for row in probs),
                  first_diff=first, clean=texts[0], corrupted=texts[1])
    out = {}
    for site in sites:
        diffs = np.full((n, H if site == "heads" else T), corrupted_diff)
        for p, value in logits.items():
            if p.site == site:
                diffs[p.layer, p.index] = float(value[0].double() - value[1].double())
        scores = (diffs - corrupted_diff) / (clean_diff - corrupted_diff)
        out[site] = PatchingResult(site, _frozen(scores), _frozen(diffs), **common)
    return out


def _check_ids(model: LoadedModel, clean_ids: list, corrupted_ids: list, sites: tuple[str, ...],
               answer: int | None, contrast: int | None) -> None:
    """What a worker checks of a request anyone could send: two id lists of this model, the same
    length within :data:`MAX_TOKENS`, differing somewhere; known sites; tokens of the vocabulary."""
    tokens = [*clean_ids, *corrupted_ids, *(t for t in (answer, contrast) if t is not None)]
    if not 0 < len(clean_ids) == len(corrupted_ids) <= MAX_TOKENS or clean_ids == corrupted_ids or \
            any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < model.vocab_size for t in tokens):
        raise ValueError(f"Patching needs two different lists of 1 to {MAX_TOKENS} token ids of this model, "
                         "of the same length.")
    if not sites or any(site not in SITES for site in sites):
        raise ValueError(f"Patching sites are among {', '.join(SITES)}.")


def _defaults(model: LoadedModel, src: Sources, answer: int | None, contrast: int | None) -> tuple[int, int]:
    """The answer (default: the clean run's top token) and the contrast (default: the corrupted run's
    top token, or its best other than the answer)."""
    if answer is None:
        answer = int(src.logits[0].argmax())
    if contrast is None:
        best = torch.topk(src.logits[1], 2).indices.tolist()
        contrast = best[1] if best[0] == answer else best[0]
    if answer == contrast:
        raise _same_answer(model, answer)
    return answer, contrast


@dataclass(frozen=True)
class PatchedPrediction:
    """The next-token distribution of one patched run beside the clean and corrupted runs' own: the
    probabilities of ``ids`` (the union of each run's top tokens, most likely first) in each run
    (``patched`` empty, ``site`` "": the pair alone, :func:`pair_prediction`)."""

    site: str
    layer: int
    index: int                        # a position, or a head for ``heads``
    ids: tuple[int, ...]
    labels: tuple[str, ...]
    clean: tuple[float, ...]
    corrupted: tuple[float, ...]
    patched: tuple[float, ...]
    token: str = ""                   # the clean prompt's token at the patched position ("" for a head)

    def rows(self) -> list[dict]:
        patched = self.patched or (None,) * len(self.ids)
        return [{"token": label, "id": i, "clean": c, "corrupted": x, "patched": p}
                for label, i, c, x, p in zip(self.labels, self.ids, self.clean, self.corrupted, patched)]


def patched_prediction(model: LoadedModel, result: PatchingResult, layer: int, index: int,
                       k: int = 5) -> PatchedPrediction:
    """One cell of ``result``'s map run again with the whole next-token distribution kept."""
    if not (0 <= layer < result.scores.shape[0] and 0 <= index < result.scores.shape[1]):
        raise ValueError(f"There is no cell ({layer}, {index}) in this map {result.scores.shape}.")
    key = (weakref.ref(model), result.clean, result.corrupted, result.site, layer, index, k)
    return _cells.get_or_compute(key, lambda: _predict(model, result, layer, index, k))


def pair_prediction(model: LoadedModel, clean: str, corrupted: str, k: int = 5) -> PatchedPrediction:
    """The clean and corrupted runs' next-token distributions side by side, no cell patched
    (``site`` "", ``patched`` empty): two forward passes, what a page shows before its maps are ready."""
    key = (weakref.ref(model), clean, corrupted, "", -1, -1, k)

    def predict() -> PatchedPrediction:
        src = _sources(model, *check_pair(model, clean, corrupted))
        return _side_by_side(model, [src.logits[0], src.logits[1]], k)
    return _cells.get_or_compute(key, predict)


def _predict(model: LoadedModel, result: PatchingResult, layer: int, index: int, k: int) -> PatchedPrediction:
    clean_ids, corrupted_ids = check_pair(model, result.clean, result.corrupted, max(len(result.tokens), MAX_TOKENS))
    src = _sources(model, clean_ids, corrupted_ids)
    start = result.first_diff if result.site == "heads" else min(index, result.first_diff)
    logits = patched(model, src, corrupted_ids, start, [(Patch(result.site, layer, index),)], None)[0]   # (V,)
    return _side_by_side(model, [src.logits[0], src.logits[1], logits], k, result.site, layer, index,
                         result.tokens[index] if result.by_position else "")


def _side_by_side(model: LoadedModel, logits: list[torch.Tensor], k: int, site: str = "", layer: int = -1,
                  index: int = -1, token: str = "") -> PatchedPrediction:
    """The runs' probabilities of the union of their top ``k`` tokens (clean, corrupted[, patched])."""
    probs = torch.softmax(torch.stack(logits).double(), -1)                                  # (runs, V)
    union = torch.unique(probs.topk(k, dim=-1).indices.flatten())
    ids = union[torch.argsort(probs[:, union].max(0).values, descending=True)].tolist()
    runs = [tuple(float(v) for v in probs[r, ids]) for r in range(len(logits))]
    return PatchedPrediction(site, layer, index, tuple(ids), token_labels(model, ids), runs[0], runs[1],
                             runs[2] if len(runs) > 2 else (), token)


def _sources(model: LoadedModel, clean_ids: list, corrupted_ids: list) -> Sources:
    """The pair's clean and corrupted runs, once for the page's first chart, the sweep and every cell
    run again (read only: nothing writes into them)."""
    key = (weakref.ref(model), tuple(clean_ids), tuple(corrupted_ids))
    return _runs.get_or_compute(key, lambda: sources(model, clean_ids, corrupted_ids))


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.float64)
    values.setflags(write=False)              # results are shared by every session: read-only
    return values


_recent: ByteLRU[dict[str, PatchingResult]] = ByteLRU(64, size_of=lambda value: 1)       # the last 64 pairs
_cells: ByteLRU[PatchedPrediction] = ByteLRU(256, size_of=lambda value: 1)
_runs: ByteLRU[Sources] = ByteLRU(4, size_of=lambda value: 1)       # ≤ 32 tokens: ≈ 10 MB each (SmolLM2)


def forget(model: LoadedModel) -> None:
    """Drop the remembered patching results of ``model`` (tests and benchmarks)."""
    _recent.drop(lambda key: key[0]() is model)
    _cells.drop(lambda key: key[0]() is model)
    _runs.drop(lambda key: key[0]() is model)

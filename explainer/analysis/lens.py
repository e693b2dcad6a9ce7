"""The logit lens: read the residual stream after every block as if it were the last."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from explainer.arch import unembed
from explainer.devices import host
from explainer.models import LoadedModel
from explainer.trace import Trace


@dataclass(frozen=True)
class LogitLens:
    """Top prediction at every (layer, position), and how the final answer forms (on the host).

    Row ``l`` reads the residual entering block ``l``; the last row (``n_layers``) reads the
    output of the last block, which gives exactly the model's logits.
    """

    top_ids: torch.Tensor        # (n+1, T) most likely next token per layer and position
    top_probs: torch.Tensor      # (n+1, T) its probability
    target_ids: torch.Tensor     # (T,) the model's final top-1 prediction per position
    target_probs: torch.Tensor   # (n+1, T) probability of that final prediction at each layer
    target_ranks: torch.Tensor   # (n+1, T) its rank (0 = top) at each layer


def logit_lens(model: LoadedModel, trace: Trace, chunk: int = 64) -> LogitLens:
    """Apply the final norm and unembedding to every residual position, keeping only small results."""
    return logit_lens_at(model, trace, range(trace.n_tokens), chunk)


def logit_lens_at(model: LoadedModel, trace: Trace, positions: Sequence[int], chunk: int = 64) -> LogitLens:
    """The logit lens at some positions only: column ``j`` of every result is ``positions[j]``.

    Each position costs (n+1) products with the whole unembedding, so a page that shows a
    window of positions asks for that window instead of the whole prompt.
    """
    cols = trace.rows(list(positions))                           # (P,)
    residual = trace.stream_at(cols)                             # (n+1, P, d) on the trace's device
    n1, P, _ = residual.shape
    final = trace.logits_at(cols).argmax(-1)                     # (P,)
    dev = final.device
    top_ids = torch.empty(n1, P, dtype=torch.long, device=dev)
    top_probs = torch.empty(n1, P, device=dev)
    t_probs = torch.empty(n1, P, device=dev)
    t_ranks = torch.empty(n1, P, dtype=torch.long, device=dev)
    norm = model.arch.final_norm(model.hf_model)
    chunk = max(1, min(chunk, (64 * 2**20) // (4 * n1 * model.vocab_size)))   # (n+1, chunk, V) stays ≤ 64 MB
    with torch.inference_mode():
        for start in range(0, P, chunk):                         # bounded memory: (n+1, chunk, V)
            sl = slice(start, min(P, start + chunk))
            logits = unembed(model.hf_model, norm(residual[:, sl].to(model.device))).float()   # (n+1, c, V)
            log_total = torch.logsumexp(logits, dim=-1)          # (n+1, c): softmax's denominator
            best, best_i = logits.max(-1)
            top_ids[:, sl], top_probs[:, sl] = best_i, torch.exp(best - log_total)
            target = logits.gather(-1, final[sl].expand(n1, -1)[..., None])       # (n+1, c, 1)
            t_probs[:, sl] = torch.exp(target[..., 0] - log_total)
            t_ranks[:, sl] = (logits > target).sum(-1)           # tokens scored above the answer
    top_ids, top_probs, final, t_probs, t_ranks = (host(t) for t in (top_ids, top_probs, final, t_probs, t_ranks))
    return LogitLens(top_ids, top_probs, final, t_probs, t_ranks)


def first_layer_with_answer(lens: LogitLens, position: int = -1) -> int:
    """The first layer from which the final answer stays the top-1 prediction at ``position``."""
    ranks = lens.target_ranks[:, position]
    layer = ranks.shape[0] - 1
    while layer > 0 and ranks[layer - 1] == 0:
        layer -= 1
    return int(layer)

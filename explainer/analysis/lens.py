"""The logit lens: read the residual stream after every block as if it were the last."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from explainer.models import LoadedModel
from explainer.trace import Trace


@dataclass(frozen=True)
class LogitLens:
    """Top prediction at every (layer, position), and how the final answer forms.

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
    residual = trace.residual                                    # (n+1, T, d)
    n1, T, _ = residual.shape
    final = trace.logits.argmax(-1)                              # (T,)
    top_ids = torch.empty(n1, T, dtype=torch.long)
    top_probs = torch.empty(n1, T)
    t_probs = torch.empty(n1, T)
    t_ranks = torch.empty(n1, T, dtype=torch.long)
    norm = model.arch.final_norm(model.hf_model)
    head = model.hf_model.get_output_embeddings()
    with torch.inference_mode():
        for start in range(0, T, chunk):                         # bounded memory: (n+1, chunk, V)
            sl = slice(start, min(T, start + chunk))
            x = residual[:, sl].to(model.device)
            probs = torch.softmax(head(norm(x)).float(), dim=-1).cpu()
            best_p, best_i = probs.max(-1)
            top_ids[:, sl], top_probs[:, sl] = best_i, best_p
            target = final[sl]
            tp = probs.gather(-1, target.expand(n1, -1)[..., None])[..., 0]
            t_probs[:, sl] = tp
            t_ranks[:, sl] = (probs > tp[..., None]).sum(-1)
    return LogitLens(top_ids, top_probs, final, t_probs, t_ranks)


def first_layer_with_answer(lens: LogitLens, position: int = -1) -> int:
    """The first layer from which the final answer stays the top-1 prediction at ``position``."""
    ranks = lens.target_ranks[:, position]
    layer = ranks.shape[0] - 1
    while layer > 0 and ranks[layer - 1] == 0:
        layer -= 1
    return int(layer)

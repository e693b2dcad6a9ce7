"""A norm with its scale frozen: the linear map it applied to one real input.

LayerNorm and RMSNorm divide by a statistic of their whole input, so they are not linear in
its parts. Frozen at the scale the real input gave, they are:

    LayerNorm:           y = (x − mean(x)) · s · w + b,   s = 1/√(var(x) + ε)
    RMSNorm (Llama):     y = x · s · w,                   s = 1/√(mean(x²) + ε)
    RMSNorm (Gemma 3):   y = x · s · (1 + w)

and ``linear(c)`` applies the same map (centring included, bias left out) to any part ``c``
of ``x``: the parts' images add up to ``y − b``. :func:`freeze_norm` checks its map against
the module's own output on ``x`` and refuses a norm it does not reproduce.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explainer.models import LoadedModel


@dataclass(frozen=True)
class FrozenNorm:
    """``y = linear(x) + bias`` for the one input the scale was frozen at. Float64, on the CPU."""

    scale: float               # s: 1 / rms (or std) of the real input
    gain: torch.Tensor         # (d,) w, or 1 + w for Gemma
    bias: torch.Tensor         # (d,) b, zeros for RMSNorm
    centred: bool              # LayerNorm subtracts each part's mean

    def linear(self, part: torch.Tensor) -> torch.Tensor:
        """The frozen map without the bias: (..., d) → (..., d)."""
        part = part.double()
        if self.centred:
            part = part - part.mean(-1, keepdim=True)
        return part * (self.scale * self.gain)


def freeze_norm(model: LoadedModel, norm: nn.Module, x: torch.Tensor) -> FrozenNorm:
    """The map ``norm`` applied to ``x`` (d,), as a :class:`FrozenNorm` (checked against the module)."""
    d = x.shape[-1]
    x64 = x.detach().double().cpu()                                          # (d,)
    weight = getattr(norm, "weight", None)
    gain = torch.ones(d, dtype=torch.float64) if weight is None else weight.detach().double().cpu()
    if isinstance(norm, nn.LayerNorm):
        centred = x64 - x64.mean()
        scale = float(torch.rsqrt(centred.pow(2).mean() + norm.eps))
        bias = torch.zeros(d, dtype=torch.float64) if norm.bias is None else norm.bias.detach().double().cpu()
        frozen = FrozenNorm(scale, gain, bias, True)
    else:
        eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
        if eps is None:
            raise ValueError(f"Cannot freeze a {type(norm).__name__}: it is neither a LayerNorm nor an RMSNorm.")
        gain = model.arch.norm_offset + gain                               # Gemma scales by (1 + w)
        frozen = FrozenNorm(float(torch.rsqrt(x64.pow(2).mean() + eps)), gain, torch.zeros(d, dtype=torch.float64),
                            False)
    _check(norm, x, frozen, model.device)
    return frozen


def _check(norm: nn.Module, x: torch.Tensor, frozen: FrozenNorm, device: torch.device) -> None:
    """The frozen map must give what the module gives on ``x``, or the split would be wrong."""
    with torch.inference_mode():
        real = norm(x.detach().to(device, torch.float32)[None])[0].double().cpu()   # (d,)
    mine = frozen.linear(x) + frozen.bias
    if not torch.allclose(mine, real, rtol=1e-4, atol=1e-5 * float(real.abs().max()) + 1e-7):
        raise ValueError(f"The {type(norm).__name__} of this model does not work like LayerNorm or RMSNorm "
                         "(its frozen copy gives other numbers), so its logit cannot be split.")

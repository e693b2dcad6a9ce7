"""Parameter counts by component, for a loaded model and for the classic GPT sizes."""
from __future__ import annotations

from dataclasses import dataclass

from explainer.models import LoadedModel

COMPONENTS = ("embeddings", "attention", "mlp", "norms", "head")


@dataclass(frozen=True)
class ParameterCount:
    name: str
    by_component: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_component.values())


def count_parameters(model: LoadedModel) -> ParameterCount:
    """Sort every parameter of the loaded model into a component (a tied head counts once)."""
    arch, hf = model.arch, model.hf_model
    counts = dict.fromkeys(COMPONENTS, 0)
    seen: set[int] = set()

    def add(component: str, module) -> None:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                counts[component] += p.numel()

    add("embeddings", arch.token_embedding(hf))
    if arch.position_embedding(hf) is not None:
        add("embeddings", arch.position_embedding(hf))
    for block in arch.blocks(hf):
        add("attention", arch.attention(block))
        add("mlp", arch.mlp(block))
        add("norms", block)                      # what is left in a block: its norms
    add("norms", arch.final_norm(hf))
    add("head", hf.get_output_embeddings())
    add("norms", hf)                             # anything else (none in GPT-2 or Llama)
    return ParameterCount(model.name, counts)


def gpt_parameters(name: str, n_layers: int, d_model: int, vocab: int, context: int,
                   d_mlp: int | None = None, tied: bool = True) -> ParameterCount:
    """Parameters of a GPT-1/2/3-style model from its hyperparameters (biases included)."""
    d_mlp = d_mlp or 4 * d_model
    attention = n_layers * (4 * d_model * d_model + 4 * d_model)
    mlp = n_layers * (2 * d_model * d_mlp + d_mlp + d_model)
    norms = (2 * n_layers + 1) * 2 * d_model
    embeddings = vocab * d_model + context * d_model
    head = 0 if tied else vocab * d_model
    return ParameterCount(name, {"embeddings": embeddings, "attention": attention, "mlp": mlp,
                                 "norms": norms, "head": head})


# Published hyperparameters (Radford et al. 2018, 2019; Brown et al. 2020).
GPT1 = gpt_parameters("GPT-1", n_layers=12, d_model=768, vocab=40478, context=512)
GPT2_XL = gpt_parameters("GPT-2 (1.5B)", n_layers=48, d_model=1600, vocab=50257, context=1024)
GPT3 = gpt_parameters("GPT-3 (175B)", n_layers=96, d_model=12288, vocab=50257, context=2048)
REFERENCE_MODELS = (GPT1, GPT2_XL, GPT3)

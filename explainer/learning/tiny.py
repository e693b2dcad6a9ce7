"""A tiny GPT-2 trained from random weights on CPU, and the helpers to look inside it.

The model is a real ``transformers.GPT2LMHeadModel`` (a few layers, tens of dimensions),
so a saved copy loads on every other page like any Hugging Face model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.pytorch_utils import Conv1D


@dataclass(frozen=True)
class TinyConfig:
    """Size of the tiny model and how it is trained (defaults: ~0.1M parameters)."""

    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    n_positions: int = 64
    block_size: int = 32  # tokens per training window (<= n_positions)
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class TokenProb:
    token: str
    prob: float


@dataclass(frozen=True)
class NextTokenDistribution:
    """The model's top next tokens after a prompt."""

    prompt: str
    top: tuple[TokenProb, ...]

    @property
    def best(self) -> str:
        return self.top[0].token if self.top else ""


@dataclass(frozen=True)
class AttentionMap:
    """Attention weights of every layer and head for one sentence."""

    tokens: tuple[str, ...]
    weights: np.ndarray  # (n_layer, n_head, T, T), rows sum to 1
    step: int = 0


def init_weights(model: nn.Module, seed: int, std: float = 0.02) -> nn.Module:
    """Fresh random weights drawn from a private generator seeded by ``seed``.

    Many sessions build tiny models at once in their own threads; seeding the process-wide
    generators there would let one session's draws change another's. This follows the GPT-2 /
    BERT recipe: normal(0, std) for linear and embedding weights (GPT-2's output projections
    ``c_proj`` scaled by 1/√(2·layers)), zero biases and padding rows, LayerNorm weight 1 and bias 0.
    """
    gen = torch.Generator().manual_seed(int(seed))
    n_layer = int(getattr(model.config, "n_layer", None) or getattr(model.config, "num_hidden_layers", 1))
    done: set[int] = set()                         # tied weights (GPT-2's head is its embedding) drawn once
    with torch.no_grad():
        for name, module in model.named_modules():
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if isinstance(bias, nn.Parameter):     # parameters only: a buffer named "bias" may be a mask
                bias.zero_()
            if not isinstance(weight, nn.Parameter) or id(weight) in done:
                continue
            done.add(id(weight))
            if isinstance(module, nn.LayerNorm):
                weight.fill_(1.0)
            elif isinstance(module, (nn.Linear, Conv1D, nn.Embedding)):
                scale = std / math.sqrt(2 * n_layer) if name.endswith("c_proj") else std
                weight.normal_(0.0, scale, generator=gen)
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    weight[module.padding_idx].zero_()
    return model


def build_tiny_gpt(vocab_size: int, config: TinyConfig = TinyConfig(), pad_token_id: int = 1) -> GPT2LMHeadModel:
    """A GPT-2 with random weights (seeded by ``config.seed`` through a private generator), eager attention."""
    gpt_config = GPT2Config(
        vocab_size=vocab_size, n_positions=config.n_positions, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, n_inner=4 * config.n_embd,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,  # tiny data: dropout only slows learning
        bos_token_id=None, eos_token_id=None, pad_token_id=pad_token_id,
        attn_implementation="eager",
    )
    model = GPT2LMHeadModel(gpt_config)
    model.config._attn_implementation = "eager"
    return init_weights(model, config.seed)


def encode_lines(tokenizer: PreTrainedTokenizerFast, lines: tuple[str, ...] | list[str]) -> torch.Tensor:
    """All sentences tokenized and concatenated into one stream of ids. Shape (N,)."""
    ids: list[int] = []
    for line in lines:
        ids.extend(tokenizer(line, add_special_tokens=False)["input_ids"])
    return torch.tensor(ids, dtype=torch.long)


def next_token_batch(stream: torch.Tensor, batch_size: int, block_size: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of the stream: inputs x and targets y = x shifted left by one.

    Returns x, y of shape (B, T): y[b, t] is the token that follows x[b, t].
    """
    T = min(block_size, len(stream) - 1)
    starts = torch.randint(0, len(stream) - T, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(T)  # (T,)
    x = stream[starts[:, None] + offsets]  # (B, T)
    y = stream[starts[:, None] + offsets + 1]  # (B, T)
    return x, y


def next_token_loss(model: GPT2LMHeadModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) of predicting y from x. x, y: (B, T)."""
    logits = model(input_ids=x).logits  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


@torch.no_grad()
def stream_loss(model: GPT2LMHeadModel, stream: torch.Tensor, block_size: int) -> float:
    """Mean next-token cross-entropy over a whole stream, in consecutive windows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(stream) - 1, block_size):
        x = stream[start:start + block_size][None, :]  # (1, T)
        y = stream[start + 1:start + block_size + 1][None, :]  # (1, T)
        x = x[:, :y.size(1)]
        total += next_token_loss(model, x, y).item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / max(count, 1)


def _prompt_ids(tokenizer: PreTrainedTokenizerFast, prompt: str, max_len: int) -> torch.Tensor:
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-max_len:]
    if not ids:
        raise ValueError("the prompt has no tokens")
    return torch.tensor([ids], dtype=torch.long)  # (1, T)


@torch.no_grad()
def next_token_distribution(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast,
                            prompt: str, k: int = 5) -> NextTokenDistribution:
    """The k most likely next tokens after ``prompt`` with their probabilities."""
    model.eval()
    ids = _prompt_ids(tokenizer, prompt, model.config.n_positions)
    probs = torch.softmax(model(input_ids=ids).logits[0, -1], dim=-1)  # (V,)
    top = torch.topk(probs, min(k, probs.numel()))
    tokens = tokenizer.convert_ids_to_tokens(top.indices.tolist())
    return NextTokenDistribution(prompt, tuple(TokenProb(t, float(p)) for t, p in zip(tokens, top.values)))


@torch.no_grad()
def generate_text(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, prompt: str,
                  max_new_tokens: int = 12, temperature: float = 0.0, seed: int = 0) -> str:
    """Continue ``prompt``: greedy when temperature == 0, else seeded sampling. Returns the new text."""
    model.eval()
    ids = _prompt_ids(tokenizer, prompt, model.config.n_positions)  # (1, T)
    n_prompt = ids.size(1)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(max_new_tokens):
        logits = model(input_ids=ids[:, -model.config.n_positions:]).logits[0, -1]  # (V,)
        if temperature <= 0:
            nxt = int(torch.argmax(logits))
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)  # (1, T+1)
    return tokenizer.decode(ids[0, n_prompt:].tolist())


@torch.no_grad()
def attention_map(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, sentence: str,
                  step: int = 0) -> AttentionMap:
    """Attention weights for one sentence: (n_layer, n_head, T, T)."""
    model.eval()
    ids = _prompt_ids(tokenizer, sentence, model.config.n_positions)  # (1, T)
    out = model(input_ids=ids, output_attentions=True)
    weights = torch.stack([a[0] for a in out.attentions]).numpy()  # (L, nh, T, T)
    return AttentionMap(tuple(tokenizer.convert_ids_to_tokens(ids[0].tolist())), weights, step)

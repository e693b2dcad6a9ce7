"""What can be loaded, and how: the embedded default, a random GPT-2, a folder or a hub id.

``load_model(None)`` gives SmolLM2-135M-Instruct and ``load_model("gemma-3-270m")`` the
multilingual Gemma 3 270M, both from GGUF files inside PyPI packages, converted once to
safetensors in the cache folder (:mod:`explainer.embedded`). Every failure raises a
:class:`ModelLoadError` whose message says what was wrong and what to do.
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from explainer import embedded, offer
from explainer.arch import Architecture, UnsupportedArchitecture, architecture_for, check_structure
from explainer.devices import normalized
from explainer.shape import ModelShape, Sized

Progress = Callable[[float, str], None]

DEFAULT_NAME = "smollm2-135m"
MULTILINGUAL_NAME = "gemma-3-270m"
EMBEDDED_NAMES = tuple(embedded.EMBEDDED)
RANDOM_GPT2 = "random-gpt2"
RANDOM_GPT2_CONTEXT = 1024
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class LoadedModel(Sized):
    """A loaded causal LM with the facts every page needs.

    ``lock`` guards the shared model: hold it for any forward pass (or hooks) made from a thread
    that other sessions may share. ``tokenizer_lock`` guards the shared tokenizer (fast tokenizers
    are not safe to share across threads); it is a lock of its own so that a session can cut its
    text into tokens while another session's forward pass runs — which is what lets concurrent
    traces gather into one batch. Never take ``lock`` while holding ``tokenizer_lock``.
    """

    hf_model: nn.Module
    tokenizer: Any
    name: str
    device: torch.device
    arch: Architecture
    shape: ModelShape               # its sizes, declared once (n_layers, d_model, … read through it)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    tokenizer_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def cache_key(self) -> str:
        """A file-safe id for on-disk caches built from this model's weights."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")
        return f"{safe}-{self.arch.family}-{self.vocab_size}x{self.d_model}"

    def embedding_matrix(self) -> torch.Tensor:
        """The token embedding matrix, detached on CPU: [vocab, d_model]."""
        return self.arch.token_embedding(self.hf_model).weight.detach().float().cpu()

    def unembedding_matrix(self) -> torch.Tensor:
        """The unembedding (lm_head) matrix, detached on CPU: [vocab, d_model]."""
        return self.hf_model.get_output_embeddings().weight.detach().float().cpu()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.hf_model.parameters())


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; anything else is taken as given."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_model(
    name: str | None = None,
    device: str = "auto",
    allow_pickle: bool = False,
    progress: Progress | None = None,
) -> LoadedModel:
    """Load a model by name: None (embedded default), an embedded name ("smollm2-135m",
    "gemma-3-270m"), "random-gpt2", a folder, or a hub id."""
    if name is not None and not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"Model name must be a string or a path, not {type(name).__name__}.")
    name = None if name is None else str(name).strip()
    target = pick_device(device)
    if not name or name == "default":
        name = DEFAULT_NAME
    offer.admit(name)                        # offered here? small enough? (nothing read yet)
    if name in embedded.EMBEDDED:
        return wrap(*_from_embedded(embedded_dir(name, progress)), name, target)
    if name == RANDOM_GPT2:
        return wrap(random_gpt2(), default_tokenizer(progress), RANDOM_GPT2, target)
    if len(name) > 1000:
        raise ModelLoadError(f"That model name is {len(name):,} characters long; a hub id or folder path "
                             "is much shorter. Check what was pasted into the model box.")
    path = Path(name).expanduser()
    if _exists(path) or name.startswith((".", "/", "~")) or os.sep in name and not _HUB_ID.match(name):
        if not path.is_dir():
            raise ModelLoadError(f"'{name}' is not a folder. Give a folder that holds config.json "
                                 "and model weights, a hub id like 'gpt2', or leave it empty for the default.")
        hf_model, tokenizer = _from_folder(path, allow_pickle)
        return wrap(hf_model, tokenizer, str(path), target)
    if not _HUB_ID.match(name):
        raise ModelLoadError(f"Unknown model name '{name}'. Use a hub id (like 'gpt2' or "
                             "'HuggingFaceTB/SmolLM2-135M'), a local folder, "
                             f"'{RANDOM_GPT2}', or leave it empty for the default.")
    hf_model, tokenizer = _from_hub(name, allow_pickle)
    return wrap(hf_model, tokenizer, name, target)


def _exists(path: Path) -> bool:
    """``path.exists()`` that answers False for names the file system cannot even look up."""
    try:
        return path.exists()
    except (OSError, ValueError):               # too long, NUL bytes, ...
        return False


def wrap(hf_model: nn.Module, tokenizer: Any, name: str, device: torch.device | str = "cpu") -> LoadedModel:
    """Put an HF causal LM into explaining shape (fastest attention, eval, no grad) and describe it.

    The forward pass uses sdpa (fused attention) where the model supports it; attention
    weights are recomputed on demand from the residual stream (:mod:`explainer.blocks`).
    """
    cfg = hf_model.config
    try:
        arch = architecture_for(cfg.model_type)
    except UnsupportedArchitecture as err:
        raise ModelLoadError(str(err)) from err
    check_structure(arch, hf_model)
    _fastest_attention(hf_model)
    device = normalized(device)                   # with its index (cuda:0), as its tensors report it
    hf_model = hf_model.to(device=device, dtype=torch.float32).eval().requires_grad_(False)
    return LoadedModel(hf_model=hf_model, tokenizer=tokenizer, name=name, device=device, arch=arch,
                       shape=ModelShape.of_config(cfg))


def _fastest_attention(hf_model: nn.Module) -> None:
    """sdpa when the model supports it, else eager (both give the same numbers)."""
    try:
        hf_model.set_attn_implementation("sdpa")
    except (ValueError, ImportError, AttributeError):
        hf_model.set_attn_implementation("eager")


def random_gpt2(vocab_size: int = 49152, seed: int = 0) -> nn.Module:
    """A GPT-2-architecture model with random weights: the "untrained model" to compare against."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=vocab_size, n_positions=RANDOM_GPT2_CONTEXT, n_embd=128, n_layer=4, n_head=4,
                        bos_token_id=1, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


# ---------------------------------------------------------------- the embedded models


def embedded_dir(name: str, progress: Progress | None = None) -> Path:
    """The converted folder of embedded model ``name``, converting it the first time."""
    try:
        return embedded.converted_dir(embedded.EMBEDDED[name], progress)
    except embedded.EmbeddedMissing as err:
        raise ModelLoadError(str(err)) from err


def embedded_ready(name: str) -> bool:
    """Whether embedded model ``name`` is converted already (loading it is then fast)."""
    return embedded.is_ready(embedded.EMBEDDED[name])


def default_model_ready() -> bool:
    """Whether the embedded default (SmolLM2) has already been converted."""
    return embedded_ready(DEFAULT_NAME)


def default_model_dir(progress: Progress | None = None) -> Path:
    """The converted default model's folder, converting the embedded GGUF the first time."""
    return embedded_dir(DEFAULT_NAME, progress)


def default_tokenizer(progress: Progress | None = None) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir(progress))


# ---------------------------------------------------------------- folders and the hub


def _from_embedded(folder: Path) -> tuple[nn.Module, Any]:
    """An embedded model's converted folder: weights, and its tokenizer read straight from
    tokenizer.json (AutoTokenizer parses Gemma's 33 MB file in Python three times: 3 s vs 1.2 s)."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    try:
        hf_model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                                        dtype=torch.float32)
        settings = json.loads((folder / "tokenizer_config.json").read_text())
        special = {k: v for k, v in settings.items() if k.endswith("_token") and isinstance(v, str)}
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special)
    except Exception as err:  # noqa: BLE001 - a damaged cache folder: say how to rebuild it
        raise ModelLoadError(f"The converted model in '{folder}' could not be read ({_short(err)}). Delete that "
                             "folder; it is converted again on the next start.") from err
    return hf_model, tokenizer


def _from_folder(path: Path, allow_pickle: bool) -> tuple[nn.Module, Any]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"The folder '{path}' has no config.json, so it is not a saved Hugging Face "
                             "model. Point to the folder that save_pretrained() wrote.")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"config.json in '{path}' is not valid JSON ({err}).") from err
    safe = list(path.glob("*.safetensors"))
    pickled = [p for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    if not safe and not pickled:
        raise ModelLoadError(f"The folder '{path}' has a config.json but no weights (*.safetensors).")
    if not safe and not allow_pickle:
        raise ModelLoadError(
            f"The folder '{path}' has only pickle weights ({pickled[0].name}). Pickle files can run "
            "arbitrary code when loaded, so they are refused. Convert them to safetensors, or load "
            "with allow_pickle=True if you trust where they came from.")
    return _load_pretrained(str(path), use_safetensors=bool(safe), local_only=True)


def _from_hub(hub_id: str, allow_pickle: bool) -> tuple[nn.Module, Any]:
    try:   # cached files work with no network at all
        return _load_pretrained(hub_id, use_safetensors=None if allow_pickle else True, local_only=True)
    except ModelLoadError as err:
        if "not found locally" not in str(err):
            raise
    if not _hub_reachable():
        raise ModelLoadError(f"'{hub_id}' is not in the local Hugging Face cache and the hub cannot be "
                             "reached (no network). Download it on a connected machine, or choose the "
                             "default model or a local folder.")
    return _load_pretrained(hub_id, use_safetensors=None if allow_pickle else True, local_only=False)


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_pretrained(source: str, use_safetensors: bool | None, local_only: bool) -> tuple[nn.Module, Any]:
    """AutoModelForCausalLM + AutoTokenizer with every failure turned into a ModelLoadError."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as err:
        if local_only and not Path(source).exists():
            raise ModelLoadError(f"'{source}' not found locally.") from err
        raise ModelLoadError(f"Could not read the configuration of '{source}': {_short(err)}") from err
    if type(config) not in AutoModelForCausalLM._model_mapping:
        raise ModelLoadError(f"'{source}' is a '{config.model_type}' model, which is not a causal "
                             "(next-token) language model. Choose a GPT-style decoder such as GPT-2 or Llama.")
    try:
        architecture_for(config.model_type)
    except UnsupportedArchitecture as err:
        raise ModelLoadError(str(err)) from err
    offer.admit_config(source, config)      # sized from the config alone, before any weight is read
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=local_only,
            use_safetensors=use_safetensors, dtype=torch.float32)
    except Exception as err:  # noqa: BLE001 - transformers raises many kinds; all mean "could not load"
        raise ModelLoadError(f"The weights of '{source}' could not be loaded: {_short(err)}. "
                             "They may be corrupt or incomplete; save or download them again.") from err
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except Exception as err:  # noqa: BLE001
        raise ModelLoadError(f"'{source}' has weights but its tokenizer could not be loaded: {_short(err)}") from err
    return hf_model, tokenizer


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + "…"


def context_length_of(name: str | None) -> int | None:
    """A model's whole context in tokens, told from its name without loading it: an embedded model's,
    random GPT-2's, a folder's ``config.json``; None when it cannot be told (a hub id)."""
    name = (str(name).strip() if name else "") or DEFAULT_NAME
    name = DEFAULT_NAME if name == "default" else name
    if name in embedded.EMBEDDED:
        return embedded.EMBEDDED[name].context
    if name == RANDOM_GPT2:
        return RANDOM_GPT2_CONTEXT
    try:
        config = json.loads((Path(name).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = config.get("text_config", config) if isinstance(config, dict) else {}
    found = config.get("max_position_embeddings") or config.get("n_positions")
    return int(found) if isinstance(found, int) and found > 0 else None

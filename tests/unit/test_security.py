"""Security settings and rules that keep a classroom server safe."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = [ROOT / "pages", ROOT / "explainer"]


def _sources(*dirs: Path) -> list[Path]:
    files = [ROOT / "app.py"]
    for d in dirs:
        files += sorted(d.rglob("*.py"))
    return files


def test_streamlit_config_keeps_secure_defaults():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server, browser = config.get("server", {}), config.get("browser", {})
    assert server.get("enableXsrfProtection", True) is True, "XSRF protection must stay on"
    assert server.get("enableCORS", True) is True, "CORS protection must stay on"
    assert browser.get("gatherUsageStats") is False, "usage statistics must be off (offline, no telemetry)"
    assert 0 < server.get("maxUploadSize", 200) <= 50, "keep uploads small"
    assert config.get("global", {}).get("developmentMode", False) is False


def test_no_unsafe_html_in_pages_or_library():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in _sources(*CODE_DIRS)
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"unsafe_allow_html\s*=\s*True", line)]
    assert not offenders, f"unsafe_allow_html=True found (escape the content or use st.html with escaping): {offenders}"


def test_trust_remote_code_is_never_passed():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in _sources(*CODE_DIRS, ROOT / "scripts")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if "trust_remote_code" in line and not line.lstrip().startswith("#")]
    assert not offenders, offenders


def test_pickle_weights_are_refused_unless_allowed(tmp_path, tokenizer):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    import explainer
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=16, n_layer=1,
                                       n_head=2, bos_token_id=1, eos_token_id=2))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()      # transformers 5 always writes safetensors
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(explainer.ModelLoadError, match="(?i)pickle"):
        explainer.load_model(str(tmp_path), device="cpu")
    assert explainer.load_model(str(tmp_path), device="cpu", allow_pickle=True).n_layers == 1


BLOCKER = r"""
import importlib.abc, pkgutil, sys, importlib

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "streamlit" or name.startswith("streamlit."):
            raise ImportError("streamlit is blocked in this test: " + name)
        return None

sys.meta_path.insert(0, Block())
import explainer
names = ["explainer"]
for info in pkgutil.walk_packages(explainer.__path__, "explainer."):
    if info.name == "explainer.ui" or info.name.startswith("explainer.ui."):
        continue
    names.append(info.name)
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as err:
        failed.append(f"{name}: {type(err).__name__}: {err}")
print("IMPORTED", len(names))
assert not any(m == "streamlit" or m.startswith("streamlit.") for m in sys.modules), "streamlit got imported"
if failed:
    print("\n".join(failed))
    sys.exit(1)
"""


def test_library_outside_ui_never_imports_streamlit():
    """Import every module of explainer/ (except explainer.ui) with streamlit made unimportable."""
    done = subprocess.run([sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    n = int(re.search(r"IMPORTED (\d+)", done.stdout).group(1))
    assert n >= 10, done.stdout

"""The shape of the code: README's Layout names every module, sizes, no import circle, one way in.

These read the source as text and the import statements as syntax; nothing is imported.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "explainer"
MAX_PAGE_LINES, MAX_LIBRARY_LINES = 100, 350


def _layout_entries() -> dict[str, str]:
    """README's Layout tree as {path: description}; folders end with "/"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Layout\s+```\n(.*?)```", text, re.S).group(1)
    entries, parents = {}, []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name, _, description = line.strip().partition(" ")
        parents = parents[:depth] + [name]
        entries["".join(parents)] = description.strip()
    return entries


def _modules() -> dict[str, Path]:
    """Every module of the library by dotted name (a package by its own name)."""
    found = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The library modules ``name`` imports anywhere in it: functions and TYPE_CHECKING blocks too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names)
    resolved = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def test_readme_layout_names_every_module_and_folder_with_one_line():
    entries = _layout_entries()
    wanted = {"app.py", "pages/", "explainer/", "assets/", "scripts/", "tests/"}
    for path in LIBRARY.rglob("*"):
        if "__pycache__" in path.parts or (path.is_file() and path.suffix != ".py"):
            continue
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and path.name == "__init__.py" and path.parent != LIBRARY:
            continue                                    # a package's __init__ is its folder's line
        wanted.add(rel + "/" if path.is_dir() else rel)
    assert not sorted(wanted - set(entries)), f"README's Layout does not name: {sorted(wanted - set(entries))}"
    missing = [p for p in entries if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"README's Layout names what does not exist: {missing}"
    assert all(entries[p] for p in wanted), [p for p in wanted if not entries[p]]


def test_contributing_names_only_what_exists_and_every_family_is_tested():
    """CONTRIBUTING.md's two lists stay true: its paths exist (for the page "why" and the family
    "gemma3"), the registry line it shows has the registry's fields, and every family of arch.py's
    table has a tiny model in tests/conftest.py."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    paths = {p.replace("<slug>", "why").replace("<family>", "gemma3")
             for p in re.findall(r"`([\w<>./-]+\.(?:py|toml|md))`", text) if "/" in p or p.endswith(".md")}
    assert len(paths) >= 10, paths
    assert not [p for p in paths if not (ROOT / p).exists()], sorted(p for p in paths if not (ROOT / p).exists())
    registry = ast.parse((LIBRARY / "registry.py").read_text(encoding="utf-8"))
    page = next(n for n in registry.body if isinstance(n, ast.ClassDef) and n.name == "Page")
    fields = [n.target.id for n in page.body if isinstance(n, ast.AnnAssign)]
    shown = re.search(r"`Page\((.*?)\)`", text).group(1)
    assert fields[:2] == ["slug", "icon"] and all(f"{name}=" in shown for name in fields[2:]), (fields, shown)
    families = set(re.findall(r'family="(\w+)"', (LIBRARY / "arch.py").read_text(encoding="utf-8")))
    conftest = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    tested = next(ast.literal_eval(n.value) for n in conftest.body if isinstance(n, ast.Assign)
                  and getattr(n.targets[0], "id", "") == "FAMILIES")
    assert families and families <= set(tested), (families, tested)


def test_pages_and_library_files_stay_small():
    big_pages = {p.name: n for p in (ROOT / "pages").glob("*.py")
                 if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_PAGE_LINES}
    big_files = {str(p.relative_to(ROOT)): n for p in LIBRARY.rglob("*.py")
                 if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LIBRARY_LINES}
    assert not big_pages, f"pages over {MAX_PAGE_LINES} lines: {big_pages}"
    assert not big_files, f"library files over {MAX_LIBRARY_LINES} lines: {big_files}"


def test_no_import_circle_anywhere():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    circles, state, trail = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        trail.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(" → ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        trail.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not circles, circles
    assert "explainer.bench.rows" in graph["explainer.bench.library"]          # the check sees what it should
    assert "explainer.trace_file" in graph["explainer.trace"] and not graph["explainer.trace_file"]  # the format alone


def test_the_core_never_imports_the_app_or_the_benchmark():
    """Only explainer.ui (and the benchmark, which measures the app) import explainer.ui; only the
    command line imports explainer.bench."""
    modules = _modules()
    offenders = {}
    for name, path in modules.items():
        found = _imports(name, path, modules)
        if not name.startswith(("explainer.ui", "explainer.bench")):
            offenders[name] = sorted(t for t in found if t.startswith("explainer.ui"))
        if not name.startswith("explainer.bench") and name != "explainer.__main__":
            offenders[name] = offenders.get(name, []) + sorted(t for t in found if t.startswith("explainer.bench"))
    assert not {k: v for k, v in offenders.items() if v}, offenders
    assert any(t.startswith("explainer.ui") for t in _imports("explainer.bench.app", modules["explainer.bench.app"],
                                                               modules))    # the check sees what it should


def _sources(*folders: Path) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for folder in folders for p in folder.rglob("*.py")}


def test_state_is_reached_through_its_public_api():
    private = re.compile(r"""["'](v_|_push_|w_)["']|\b_trace_cache\b|\b_bind\b|session_state\[["'](v_|w_)""")
    offenders = [f"{path}:{i}" for path, text in _sources(ROOT / "pages", ROOT / "tests", LIBRARY).items()
                 if path not in ("explainer/ui/frame/state.py", "explainer/ui/frame/binding.py", "explainer/ui/frame/shared.py",
                                 "tests/unit/test_layout.py")
                 for i, line in enumerate(text.splitlines(), 1) if private.search(line)]
    assert not offenders, offenders


def test_tokens_are_escaped_by_the_one_rule_only():
    """No page or figure escapes a token by hand (explainer.tokens does it; chips escape their tooltips)."""
    allowed = {"explainer/tokens.py", "explainer/figures/tokens.py", "explainer/figures/generation.py"}
    offenders = [f"{path}:{i}" for path, text in _sources(ROOT / "pages", LIBRARY / "figures", LIBRARY / "ui").items()
                 if path not in allowed
                 for i, line in enumerate(text.splitlines(), 1) if re.search(r"html\.escape|markdown_safe|_md_safe", line)]
    assert not offenders, offenders


def test_sentences_are_made_in_words_from_the_text_files_only():
    """explainer/words picks which text a result calls for and fills it; its code holds no words of its own
    (only text keys and placeholders), and no page picks a sentence by a condition (t["a" if … else "b"])."""
    words = []
    for path, text in _sources(LIBRARY / "words").items():
        tree = ast.parse(text)
        docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef))
                and ast.get_docstring(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                bare = re.sub(r"\{[^}]*\}", "", node.value)
                if not re.fullmatch(r"[a-z][a-z0-9_.]*", node.value) and re.search(r"[A-Za-z]{2,}", bare):
                    words.append(f"{path}:{node.lineno}: {node.value!r}")
    assert not words, words
    picking = re.compile(r"""\bt\[\s*["'][^"']*["']\s+if\b""")
    offenders = [f"{path}:{i}" for path, text in _sources(ROOT / "pages").items()
                 for i, line in enumerate(text.splitlines(), 1) if picking.search(line)]
    assert not offenders, offenders
    assert len(_sources(LIBRARY / "words")) >= 5


def test_charts_export_results_not_hand_made_tables():
    """figure(fig, key, result) (and clickable_figure): no page or ui module shapes export rows or passes labels itself."""
    offenders = []
    for path, text in _sources(ROOT / "pages", LIBRARY / "ui").items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("figure", "clickable_figure"):
                extra = [k.arg for k in node.keywords] + [ast.unparse(a) for a in node.args[2:]
                                                          if isinstance(a, (ast.Dict, ast.List, ast.Call))]
                if extra or len(node.args) > 3:
                    offenders.append(f"{path}:{node.lineno}: {extra}")
    assert not offenders, offenders

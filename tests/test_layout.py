"""docs/layout.md is the map of the code: this test holds the map against the code.

The layer table says which folder may import which; the import graph is drawn from the
source (every ``import`` and ``from ... import`` at any depth, lazy ones included) and each
arrow must point to the same layer or one below, with no cycle between folders. Every
top-level folder and script appears in the table, and every path and name the page mentions
exists (a map that names a moved function sends the next maintainer to the wrong file).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYOUT = REPO / "docs" / "layout.md"
NOT_CODE = {"tests", "docs", "configs", "build", "runs", "mutants"}


def top_level_units(repo: Path) -> set[str]:
    """Top-level packages (folders with __init__.py) and scripts: the rooms of the house."""
    packages = {p.name for p in repo.iterdir() if p.is_dir() and (p / "__init__.py").exists()
                and p.name not in NOT_CODE and not p.name.startswith(".")}
    return packages | {p.stem for p in repo.glob("*.py")}


def imported_units(path: Path, units: set[str]) -> set[str]:
    """The top-level units one file imports, at any depth. The installed name puts each folder
    under ``tweetcls`` (``tweetcls.lora`` is lora/), so ``tweetcls.X`` and ``from tweetcls import X``
    count as X where X is a folder, and as the tweetcls/ folder otherwise."""

    def unit_of(dotted: str) -> str | None:
        parts = dotted.split(".")
        if parts[0] == "tweetcls" and len(parts) > 1 and parts[1] in units:
            return parts[1]
        return parts[0] if parts[0] in units else None

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "tweetcls":
            names = [f"tweetcls.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {u for u in map(unit_of, names) if u}
    return found


def unit_files(repo: Path, unit: str) -> list[Path]:
    return [repo / f"{unit}.py"] if (repo / f"{unit}.py").is_file() else list((repo / unit).rglob("*.py"))


def import_graph(repo: Path) -> dict[str, set[str]]:
    units = top_level_units(repo)
    edges: dict[str, set[str]] = {}
    for unit in units:
        for path in unit_files(repo, unit):
            if path.name == "__main__.py" and path.parent != repo / "commands":
                continue  # `python -m tweetcls`: an entry point at the top, whichever folder holds it
            for target in imported_units(path, units) - {unit}:
                edges.setdefault(unit, set()).add(target)
    return edges


def command_imports(repo: Path) -> list[str]:
    """Imports of a command by anything but its own script and the ``tweetcls`` command table:
    what two commands share belongs in a package below them (issue 51), not in a command."""
    commands = {p.stem for p in (repo / "commands").glob("*.py") if not p.stem.startswith("_")}
    wrong = []
    for path in [*repo.glob("*.py"), *(p for u in ("commands", "benchmarks", "experiments", "tweetcls", "training")
                                        for p in (repo / u).rglob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "tweetcls.commands":
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tweetcls.commands."):
                names = [node.module.split(".")[2]]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[2] for a in node.names if a.name.startswith("tweetcls.commands.")]
            else:
                continue
            own = {path.stem} if path.parent == repo else set()  # train.py is the shim of commands/train.py
            own |= {"__main__"} if path.parent.name == "tweetcls" and path.name == "__main__.py" else set()
            wrong += [f"{path.relative_to(repo)} imports commands/{n}.py" for n in names
                      if n in commands | {"__main__"} and n not in own]
    return sorted(wrong)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def layer_table(text: str) -> dict[str, int]:
    """unit -> layer number (0 = top) from the '| layer | folders | imports |' table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*layer\s*\|\s*folders\s*\|", line))
    layers: dict[str, int] = {}
    for number, line in enumerate(lines[start + 2:]):
        if not line.startswith("|"):
            break
        folders = line.split("|")[2]
        folders = folders.split("(")[0]  # what follows in parentheses describes, it does not list
        for name in re.findall(r"`([\w./-]+)`", folders):
            layers[name.rstrip("/").removesuffix(".py")] = number
    return layers


def test_the_layer_table_lists_every_top_level_folder_and_script():
    layers = layer_table(LAYOUT.read_text())
    missing = top_level_units(REPO) - set(layers)
    assert not missing, f"docs/layout.md's layer table leaves out {sorted(missing)}"
    gone = set(layers) - top_level_units(REPO)
    assert not gone, f"docs/layout.md's layer table names {sorted(gone)}, which do not exist"


def test_imports_go_down_the_layers_and_never_around_a_loop():
    layers = layer_table(LAYOUT.read_text())
    edges = import_graph(REPO)
    upward = sorted(f"{src} -> {dst}" for src, targets in edges.items() for dst in targets
                    if layers.get(dst, 99) < layers.get(src, 99))
    assert not upward, f"imports that go up a layer of docs/layout.md: {upward}"
    assert cycles(edges) == [], f"folders that import each other: {cycles(edges)}"


def test_no_command_imports_another_and_no_library_imports_a_command():
    """tune and pretrain once imported train.py, benchmarks imported evaluate/export/serve."""
    assert command_imports(REPO) == []


def test_the_command_check_sees_a_command_imported(tmp_path):
    (tmp_path / "commands").mkdir()
    for name in ("train", "tune"):
        (tmp_path / "commands" / f"{name}.py").write_text("")
    (tmp_path / "commands" / "tune.py").write_text("def f():\n    from tweetcls.commands import train\n")
    (tmp_path / "train.py").write_text("from tweetcls.commands.train import main\n")  # its own shim: allowed
    (tmp_path / "tune.py").write_text("import tweetcls.commands.train\n")
    assert command_imports(tmp_path) == ["commands/tune.py imports commands/train.py", "tune.py imports commands/train.py"]


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    """The graph is drawn from lazy imports inside functions too, and a loop is found."""
    for name in ("low", "high"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "low" / "a.py").write_text("def f():\n    from high.b import g\n")
    (tmp_path / "high" / "b.py").write_text("import low.a\n")
    (tmp_path / "tool.py").write_text("import high\n")
    (tmp_path / "other.py").write_text("from tweetcls import low\nimport tweetcls.high.b\n")  # the installed names
    edges = import_graph(tmp_path)
    assert edges == {"low": {"high"}, "high": {"low"}, "tool": {"high"}, "other": {"low", "high"}}
    assert cycles(edges) == [["high", "low"]]
    table = "| layer | folders | imports |\n|---|---|---|\n| top | `tool.py` | x |\n| a | `high/` | x |\n| b | `low/` (`x`) | y |\n"
    assert layer_table(table) == {"tool": 0, "high": 1, "low": 2}


def _defined_names(path: Path, imported: bool = True) -> set[str]:
    """Names a file defines (and, with ``imported``, the names it imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and imported:
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def test_every_path_and_name_the_map_mentions_exists():
    text = LAYOUT.read_text()
    code = [p for unit in top_level_units(REPO) for p in unit_files(REPO, unit)]
    import lightning

    defined = set().union(*(_defined_names(p) for p in code)) | set(dir(lightning))  # e.g. LightningDataModule
    missing = []
    for token in set(re.findall(r"`([^`\s]+)`", text)):
        if token.startswith("-") or token.startswith("python"):
            continue
        if re.fullmatch(r"[\w./-]+\.py|[\w-]+/([\w./-]*)", token):
            if not ((REPO / token).exists() or (REPO / "core" / token).exists()):
                missing.append(token)
        elif re.fullmatch(r"[A-Za-z_]\w*", token) and token not in top_level_units(REPO) and token not in defined:
            missing.append(token)
    for name, path in re.findall(r"`(\w+)` in `([\w/]+\.py)`", text):
        if (REPO / path).is_file() and name not in _defined_names(REPO / path, imported=False):
            missing.append(f"{name} in {path}")
    assert not missing, f"docs/layout.md names what does not exist: {sorted(missing)}"


@pytest.mark.parametrize("bad", ["`METHODS` in `train.py`", "`gone_folder/`", "`no_such_function_anywhere`"])
def test_the_name_check_fails_on_a_stale_map(bad, monkeypatch, tmp_path):
    stale = tmp_path / "layout.md"
    stale.write_text(LAYOUT.read_text() + f"\n- {bad}\n")
    monkeypatch.setattr(__import__(__name__), "LAYOUT", stale)
    with pytest.raises(AssertionError, match="names what does not exist"):
        test_every_path_and_name_the_map_mentions_exists()


def test_every_file_of_core_is_in_the_concern_table():
    """core/ is what more than one layer needs; the page's table is where each file's room is named."""
    text = LAYOUT.read_text()
    table = text[text.index("| concern | files |"):]
    listed = set(re.findall(r"`(\w+\.py)`", table.split("\n\n")[0]))
    present = {p.name for p in (REPO / "core").glob("*.py") if p.name != "__init__.py"}
    assert present - listed == set(), f"core/ files the table of docs/layout.md leaves out: {sorted(present - listed)}"

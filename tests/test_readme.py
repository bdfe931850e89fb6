"""The commands in README.md and docs/ run as written.

Every ``python <command>.py ...`` line of a ```bash block is parsed by that command's own
parser (flags that exist, values in their domains); README's cheap ones also run, end to
end, on the tiny model with tiny budgets. Placeholders become real things: ``runs/<run>``
a finished tiny run, a data file name a small CSV/TXT of that name.
"""

from __future__ import annotations

import csv
import importlib
import re
import shlex
from pathlib import Path

import pytest

from conftest import make_texts, train_tiny_run

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = ("train", "predict", "evaluate", "export", "serve", "tune", "pretrain")
DATA_FILE = re.compile(r"^[\w./-]+\.(csv|tsv|txt|json|jsonl|yaml)$")


def command_lines(path: Path) -> list[str]:
    """The `python X.py ...` lines of the file's ```bash blocks (continuations joined, comments cut)."""
    lines, block = [], None
    for raw in path.read_text().splitlines():
        if raw.startswith("```"):
            block = raw[3:].strip() if block is None else None
            continue
        if block in ("bash", "sh") and raw.strip():
            line = raw.split(" #", 1)[0].strip()
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line
            else:
                lines.append(line)
    return [line for line in lines if re.match(rf"^python ({'|'.join(COMMANDS)})\.py\b", line)]


ALL = [(path.name, line) for path in DOCS for line in command_lines(path)]


def test_the_docs_have_commands_to_check():
    assert len([1 for name, _ in ALL if name == "README.md"]) >= 10 and len(ALL) >= 30


@pytest.fixture(scope="module")
def world(tiny_model_dir, tiny_csv, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("readme")
    run = train_tiny_run(tiny_model_dir, tiny_csv, root / "runs")
    return {"root": root, "run": run, "model": tiny_model_dir}


def realise(line: str, world: dict) -> list[str]:
    """argv of a documented line with its placeholders made real (files created in world['root'])."""
    argv = []
    for token in shlex.split(line)[2:]:
        is_output = bool(argv) and argv[-1] in ("--output", "--out")  # a file the command writes: not made here
        token = token.replace("runs/<run>", str(world["run"]))
        if re.search(r"<\w+>", token) or token in ("runs/T", "runs/T0,runs/T1,runs/T2"):
            token = str(world["run"]) if token.startswith("runs/") else token
        if is_output and not Path(token).is_absolute():
            token = str(world["root"] / token)
        elif DATA_FILE.match(token) and not (REPO / token).exists() and not Path(token).is_absolute():
            target = world["root"] / token
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.suffix == ".yaml":
                target.write_text("{}\n")
            elif target.suffix == ".txt":
                target.write_text("\n".join(t for t, _ in make_texts(20, seed=4)) + "\n")
            else:
                with open(target, "w", newline="") as f:
                    writer = csv.writer(f, delimiter="\t" if target.suffix == ".tsv" else ",")
                    writer.writerow(["text", "label"])
                    writer.writerows(make_texts(60, seed=len(token)))
            token = str(target)
        elif ("/" in token or "." in token) and not token.startswith("-") and (REPO / token).exists():
            token = str(REPO / token)
        argv.append(token)
    return argv


@pytest.mark.parametrize("where, line", ALL, ids=[f"{n}:{i}" for i, (n, _) in enumerate(ALL)])
def test_every_documented_command_parses(where, line, world, monkeypatch):
    monkeypatch.chdir(world["root"])
    module = importlib.import_module("tweetcls.commands." + line.split()[1].removesuffix(".py"))
    argv = realise(line, world)
    parser = module.build_parser()
    if line.split()[1] == "tune.py":  # tune passes the rest to train.py
        argv, rest = parser.parse_known_args(argv)
        importlib.import_module("tweetcls.training.options").build_parser().parse_args(rest)
    else:
        (parser.parse_intermixed_args if line.split()[1] == "predict.py" else parser.parse_args)(argv)


CHEAP = {"train.py": ["--max-steps", "2", "--max-train-samples", "32", "--max-eval-samples", "16", "--batch-size", "8",
                      "--no-progress-bar"],
         "predict.py": [], "export.py": [], "evaluate.py": []}


@pytest.mark.parametrize("line", [line for where, line in ALL if where == "README.md" and line.split()[1] in CHEAP])
def test_readme_commands_run(line, world, monkeypatch):
    """README's train/predict/export/evaluate lines, run (train on the tiny model, 2 steps)."""
    monkeypatch.chdir(world["root"])
    script = line.split()[1]
    argv = realise(line, world) + CHEAP[script]
    if script == "train.py":
        argv += ["--output-dir", str(world["root"] / "out")]
        if "--model" not in argv:
            argv += ["--model", str(world["model"])]
    module = importlib.import_module("tweetcls.commands." + script.removesuffix(".py"))
    assert module.main(argv) == 0, line

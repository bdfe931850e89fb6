"""Bad input, as a new user types it: exit code 2, one line on stderr naming the problem and
the fix, no traceback, and nothing left behind."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from tweetcls.commands import evaluate
from tweetcls.commands import train
from conftest import make_texts, train_tiny_run


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    return train_tiny_run(tiny_model_dir, tiny_csv, out, "--lr", "5e-4")


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def pickled_model_folder(tiny_model_dir: Path, folder: Path) -> str:
    class Payload:
        def __reduce__(self):
            return (Path.touch, (folder / "pwned",))

    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Payload()}))
    return str(folder)


def interrupted_run(folder: Path) -> str:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("method: lora\nlora_r: 8\nseed: 0\nmax_epochs: 1\n")
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"state")
    return str(folder)


ROWS = "text,label\n" + "\n".join(f"{t},{label}" for t, label in make_texts(40)) + "\n"

# (case id, extra flags given the temp dir, the words the one line must hold)
TRAIN_CASES = [
    ("run-name-dot", lambda d, m: ["--run-name", ".", "--overwrite"], "is not a plain folder name"),
    ("run-name-parent", lambda d, m: ["--run-name", "..", "--overwrite"], "is not a plain folder name"),
    ("resume-other-rank", lambda d, m: ["--resume", interrupted_run(d / "old"), "--lora-r", "4"],
     "it has --lora-r 8, not 4"),
    ("resume-other-method", lambda d, m: ["--resume", interrupted_run(d / "old"), "--method", "full"],
     "it has --method lora, not full"),
    ("pickled-weights", lambda d, m: ["--model", pickled_model_folder(m, d / "pkl")], "holds pickled objects"),
    ("csv-too-small", lambda d, m: ["--dataset", write(d / "small.csv", "text,label\nhi,a\nho,b\nha,a\n")],
     "has 3 usable rows; at least 20"),
    ("jsonl-no-text-key", lambda d, m: ["--dataset", write(d / "x.jsonl", '{"text": "a b", "label": "x"}\n'
                                                           '{"tweet": "c d", "label": "y"}\n')],
     "column 'text' not in record 2"),
    ("jsonl-not-object", lambda d, m: ["--dataset", write(d / "x.jsonl", '{"text": "a b", "label": "x"}\n[1, 2]\n')],
     "record 2 is not an object"),
    ("json-bad-line", lambda d, m: ["--dataset", write(d / "x.jsonl", '{"text": "a b", "label": "x"}\n{oops\n')],
     "line 2 is not valid JSON"),
    ("empty-label", lambda d, m: ["--dataset", write(d / "e.csv", ROWS + "lonely text,\n")],
     "row 41 has an empty label"),
    ("config-lr-text", lambda d, m: ["--config", write(d / "c.yaml", "lr: fast\n")], "lr must be a number"),
    ("config-epochs-float", lambda d, m: ["--config", write(d / "c.yaml", "max_epochs: 2.5\n")],
     "max_epochs must be an integer"),
    ("config-bool-text", lambda d, m: ["--config", write(d / "c.yaml", "fast_dropout: 'yes'\n")],
     "fast_dropout must be true or false"),
    ("config-method", lambda d, m: ["--config", write(d / "c.yaml", "method: magic\n")], "method must be one of"),
    ("config-list", lambda d, m: ["--config", write(d / "c.yaml", "lora_targets: [query, value]\n")],
     "lora_targets must be a single value"),
    ("weight-decay-nan", lambda d, m: ["--weight-decay", "nan"], "--weight-decay must be a number >= 0"),
    ("batch-size-zero", lambda d, m: ["--batch-size", "0"], "--batch-size must be an integer > 0"),
]


@pytest.mark.parametrize("case, extra, words", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_bad_input(tiny_model_dir, tiny_csv, tmp_path, capsys, case, extra, words):
    flags = extra(tmp_path, tiny_model_dir)
    before = tree(tmp_path)
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path / "runs"),
            "--max-epochs", "1", "--no-progress-bar", *flags]
    code = train.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("train.py: error: ") and words in err[0], err
    assert tree(tmp_path) == before  # nothing made, nothing removed
    assert not (tmp_path / "pkl" / "pwned").exists()


EVALUATE_CASES = [
    ("threads-zero", lambda r, d: [str(r), "--threads", "0"], "--threads must be an integer > 0"),
    ("max-eval-zero", lambda r, d: [str(r), "--max-eval-samples", "0"], "--max-eval-samples must be an integer > 0"),
    ("threshold-zero", lambda r, d: [str(r), "--threshold", "0"], "--threshold must be a number in (0, 1)"),
    ("max-length-zero", lambda r, d: [str(r), "--max-length", "0"], "--max-length must be an integer > 0"),
    ("max-length-huge", lambda r, d: [str(r), "--max-length", "100000"], "--max-length 100000 exceeds"),
    ("save-variants-file", lambda r, d: [str(r), "--compress", "int8", "--save-variants", write(d / "f.txt", "x")],
     "--save-variants must be a folder (it may not exist yet), not a file"),
    ("latency-too-long", lambda r, d: [str(r), "--compress", "none", "--latency-seq-len", "100000"],
     "--latency-seq-len 100000 exceeds"),
    ("results-not-object", lambda r, d: [str(_copy_with_results(r, d, "[1, 2, 3]"))], "is not a JSON object"),
    ("results-corrupt", lambda r, d: [str(_copy_with_results(r, d, '{"method": '))], "is corrupt"),
    ("unknown-variant", lambda r, d: [str(r), "--compress", "zip"], "unknown compression step 'zip'"),
]


def _copy_with_results(run: Path, folder: Path, text: str) -> Path:
    copy = folder / "copy"
    shutil.copytree(run, copy)
    (copy / "results.json").write_text(text)
    return copy


@pytest.mark.parametrize("case, argv, words", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_bad_input(finished_run, tmp_path, capsys, case, argv, words):
    args = argv(finished_run, tmp_path)
    before, run_before = tree(tmp_path), tree(finished_run)
    code = evaluate.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("evaluate.py: error: ") and words in err[0], err
    assert tree(tmp_path) == before and tree(finished_run) == run_before


def test_compare_skips_a_broken_run_with_a_warning(finished_run, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished_run, runs / "good")
    (runs / "broken").mkdir()
    (runs / "broken" / "results.json").write_text(json.dumps(["not", "an", "object"]))
    (runs / "partial").mkdir()
    (runs / "partial" / "results.json").write_text(json.dumps({"method": "lora"}))
    assert evaluate.main(["--compare", str(runs)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 2 and any("broken" in w for w in warnings) and any("partial" in w for w in warnings)
    table = (runs / "comparison.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 2  # the header and the good run


def test_a_library_error_names_the_parameter_and_a_command_names_the_flag(capsys):
    """The library speaks in its own parameter names; a command maps those it filled from flags."""
    from tweetcls.core.errors import ParameterError, flags_of, report
    from tweetcls.lora.layer import check_lora_hyperparameters
    from tweetcls.training.options import build_parser

    with pytest.raises(ParameterError) as caught:
        check_lora_hyperparameters(0, 16, 0.1)
    assert str(caught.value).startswith("r must be a positive integer")
    flags = flags_of(build_parser(), r="--lora-r")
    assert flags["batch_size"] == "--batch-size" and flags["max_train_samples"] == "--max-train-samples"
    assert report("train.py", caught.value, flags) == 2
    assert capsys.readouterr().err.startswith("train.py: error: --lora-r must be a positive integer (the LoRA rank), got 0")
    assert report("train.py", ParameterError("batch_size", "must be > 0, got 0"), flags) == 2
    assert capsys.readouterr().err == "train.py: error: --batch-size must be > 0, got 0\n"
    report("train.py", ParameterError("not_a_flag", "is wrong"), flags)  # no flag for it: the library's name stays
    assert capsys.readouterr().err == "train.py: error: not_a_flag is wrong\n"

"""Issue 46, the operational findings: search workers that repeated each other's trials,
Lightning values that failed (or hung) only after the run folder existed, OSErrors as
tracebacks, a run called finished before its files were written, and predict.py holding
its whole input in memory. Each test was red before its fix."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import lightning  # noqa: F401  imported at collection: its log handlers bind to the real stderr, not a test's capture
import pytest

from tweetcls.commands import tune
from tweetcls.search_space import suggest
from conftest import one_error_line as _one_line

SPACE = {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
         "lora_r": {"type": "categorical", "choices": [2, 4]}}


# --- 1. search workers never repeat each other's trials ------------------------------------------

def _worker(storage: str, seed: int = 0):
    """What one tune.py process holds: its own sampler on the shared study."""
    import optuna

    return optuna.create_study(study_name="s", storage=storage, direction="maximize", load_if_exists=True,
                               sampler=tune.make_sampler(seed))


def _trial(study) -> dict:
    trial = study.ask()
    params = suggest(trial, SPACE)
    study.tell(trial, params["lr"])
    return params


def test_two_workers_on_one_sqlite_study_never_draw_the_same_point(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first, second = _worker(storage), _worker(storage)  # same --sampler-seed, as two workers are started
    points = [_trial(first), _trial(second), _trial(first), _trial(second)]
    assert len({tuple(sorted(p.items())) for p in points}) == 4, points


def test_a_restarted_worker_does_not_repeat_trial_0(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    trial_0 = _trial(_worker(storage))
    after_restart = _trial(_worker(storage))  # a new process: a new sampler on the same study
    assert after_restart != trial_0


def test_the_same_seed_repeats_a_study_and_another_seed_does_not(tmp_path):
    def first_points(name: str, seed: int) -> list[dict]:
        study = _worker(f"sqlite:///{tmp_path / name}", seed)
        return [_trial(study) for _ in range(3)]

    assert first_points("a.db", 0) == first_points("b.db", 0)
    assert first_points("c.db", 1) != first_points("d.db", 0)


# --- 2. Lightning's hardware values checked at the door ------------------------------------------

def _train_argv(model_dir, csv, out, *extra) -> list[str]:
    return ["--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out), "--run-name", "r",
            "--batch-size", "16", "--max-epochs", "1", "--no-progress-bar", *extra]




@pytest.mark.parametrize("extra, words", [
    (["--precision", "foo"], "--precision foo: Precision 'foo' is invalid"),
    (["--accelerator", "gpu"], "--accelerator gpu: this machine has no GPU"),
    (["--strategy", "foo"], "--strategy foo: You selected an invalid strategy name"),
    (["--devices", "99"], "use at most --devices"),
    (["--num-nodes", "2"], "--num-nodes 2 needs MASTER_ADDR, MASTER_PORT, NODE_RANK"),
])
def test_hardware_values_this_machine_cannot_honour_are_one_line_before_the_run_folder(
        tiny_model_dir, tiny_csv, tmp_path, capsys, monkeypatch, extra, words):
    import torch

    from tweetcls.commands import train

    if extra[0] == "--accelerator" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert train.main(_train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs", *extra)) == 2
    line = _one_line(capsys)
    assert line.startswith("train.py: error: ") and words in line, line
    assert not (tmp_path / "runs").exists()  # nothing that blocks the rerun


def test_a_multi_node_run_says_what_it_waits_for_and_times_out(tiny_model_dir, tiny_csv, tmp_path, capsys,
                                                                monkeypatch):
    from benchmarks.live_server import free_port

    from tweetcls.commands import train

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("NODE_RANK", "0")
    argv = _train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs", "--num-nodes", "2", "--node-timeout", "2",
                       "--accelerator", "cpu", "--devices", "1")
    assert train.main(argv) == 1  # no node 1: before the fix this waited 30 minutes
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train.py:")]
    assert "waits up to 2 s for the others at 127.0.0.1" in err[0], err
    assert err[-1].startswith("train.py: error: --num-nodes 2: not all nodes joined"), err
    assert not (tmp_path / "runs").exists()  # nothing was trained: nothing left in a rerun's way (issue 46 leftover b)
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    assert train.main(argv) == 1  # the same command again is not refused as 'already exists'
    assert "not all nodes joined" in capsys.readouterr().err


# --- 3. every OSError is one line with its path -----------------------------------------------------

@pytest.mark.parametrize("name, code", [("EROFS", 2), ("EACCES", 2), ("ENAMETOOLONG", 2), ("ENOTDIR", 2),
                                        ("ENOSPC", 1), ("EFBIG", 1)])
def test_each_os_error_class_is_one_line_naming_the_path(name, code, capsys):
    from tweetcls.core.errors import report

    err = OSError(getattr(errno, name), os.strerror(getattr(errno, name)), "/data/runs/r/results.json")
    assert report("x.py", err) == code
    line = _one_line(capsys)
    assert line.startswith("x.py: error: /data/runs/r/results.json: "), line


@pytest.mark.parametrize("name", ["ENOSPC", "EFBIG"])
def test_a_full_disk_and_a_file_size_limit_are_storage_errors_naming_the_target(name):
    from tweetcls.core.atomic import storage_error
    from tweetcls.core.errors import StorageFull

    err = storage_error(OSError(getattr(errno, name), os.strerror(getattr(errno, name))), "/runs/r/model")
    assert isinstance(err, StorageFull) and "/runs/r/model" in str(err)


@pytest.mark.parametrize("errname", ["EROFS", "EFBIG", "ENOSPC", "EACCES"])
def test_an_os_error_while_training_is_one_line_in_train_and_tune(tiny_model_dir, tiny_csv, tmp_path, capsys,
                                                                   monkeypatch, errname):
    """A read-only disk (EROFS, not PermissionError) or a file-size limit while a run writes."""
    from tweetcls.commands import train
    from tweetcls.commands import tune
    import tweetcls.study_report  # noqa: F401  imported now: their own names for write_text_atomic never bind the patch
    import tweetcls.review.compare  # noqa: F401

    def refuse(*args, **kwargs):
        raise OSError(getattr(errno, errname), os.strerror(getattr(errno, errname)), str(tmp_path / "x" / "config.yaml"))

    monkeypatch.setattr("tweetcls.core.atomic.write_text_atomic", refuse)
    assert train.main(_train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs")) in (1, 2)
    assert _one_line(capsys).startswith("train.py: error: ")
    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    monkeypatch.setattr("tweetcls.commands.tune.study_storage", lambda *a: refuse())
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path / "t"),
            "--trials", "1", "--space", str(space), "--study-name", "s"]
    assert tune.main(argv) in (1, 2)
    assert _one_line(capsys).startswith("tune.py: error: ")


@pytest.mark.parametrize("flag_value", ["file", "long"])
def test_an_output_dir_under_a_file_or_a_run_name_too_long_is_one_line(tiny_model_dir, tiny_csv, tmp_path, capsys,
                                                                       flag_value):
    from tweetcls.commands import train

    (tmp_path / "a-file").write_text("x")
    out, name = (tmp_path / "a-file" / "runs", "r") if flag_value == "file" else (tmp_path / "runs", "n" * 300)
    argv = _train_argv(tiny_model_dir, tiny_csv, out)
    argv[argv.index("--run-name") + 1] = name
    assert train.main(argv) == 2
    line = _one_line(capsys)
    assert ("not a file nor under one" in line) if flag_value == "file" else ("too long" in line and name in line)


# --- 4. predict.py streams its input and output ---------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    from conftest import train_tiny_run

    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("ops"))


def test_predict_reads_classifies_and_writes_a_chunk_at_a_time_with_the_same_rows(run_dir, tmp_path, capsys,
                                                                                    monkeypatch):
    """1M lines peaked at 2.86 GB: every text, result and output line was held at once."""
    import csv as csv_module

    from tweetcls.commands import predict
    from conftest import make_texts
    from tweetcls.prediction_files import predictions_csv, predictions_jsonl
    from tweetcls.predictor import Predictor

    texts = [text for text, _ in make_texts(11, seed=5)]
    texts[3] = ""
    source = tmp_path / "in.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        csv_module.writer(f).writerows([("id", "text"), *[(f"t{i}", t) for i, t in enumerate(texts)]])
    whole = Predictor.from_run(run_dir).predict(texts)
    ids = [f"t{i}" for i in range(len(texts))]
    seen: list[int] = []
    original = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, t, *a, **k: seen.append(len(t)) or original(self, t, *a, **k))
    monkeypatch.setattr(predict, "CHUNK", 4)
    for suffix, expected in ((".csv", predictions_csv(ids, texts, whole, ["anger", "calm", "joy"])),
                             (".jsonl", predictions_jsonl(ids, texts, whole))):
        out = tmp_path / f"out{suffix}"
        assert predict.main([str(run_dir), "--input", str(source), "--output", str(out), "--no-progress-bar"]) == 0
        text = out.read_text(encoding="utf-8")
        assert text.splitlines()[0] == expected.splitlines()[0]  # the same header (CSV) or first row's keys
        if suffix == ".csv":
            got, want = list(csv_module.reader(text.splitlines())), list(csv_module.reader(expected.splitlines()))
        else:
            got, want = ([_flat(json.loads(line)) for line in t.splitlines()] for t in (text, expected))
        assert len(got) == len(want)
        for g, w in zip(got, want):  # the same ids, texts, labels, empty marks; probabilities to float rounding
            assert [c for c in g if not _number(c)] == [c for c in w if not _number(c)]
            assert [float(c) for c in g if _number(c)] == pytest.approx([float(c) for c in w if _number(c)], abs=2e-6)
        assert not list(tmp_path.glob(".out*"))  # no temporary file left
    assert max(seen) <= 4 and sum(seen) == 2 * len(texts), seen


def _flat(row: dict) -> list:
    """A JSON row's keys and values, a nested dict's (the probabilities) spread out."""
    return [x for k, v in row.items() for x in ([k, *_flat(v)] if isinstance(v, dict) else [k, v])]


def _number(cell) -> bool:
    try:
        return not isinstance(cell, (bool, dict)) and cell is not None and float(cell) is not None
    except ValueError:
        return False


def test_a_bad_row_late_in_the_input_leaves_no_output_file(run_dir, tmp_path, capsys, monkeypatch):
    from tweetcls.commands import predict

    monkeypatch.setattr(predict, "CHUNK", 2)
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "happy love\n" * 7 + "a,b\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert predict.main([str(run_dir), "--input", str(source), "--output", str(out), "--no-progress-bar"]) == 2
    assert "row 8 (line 9) has 2 fields" in _one_line(capsys)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_predict_refuses_more_threads_than_cores_and_an_output_in_a_missing_folder(run_dir, tmp_path, capsys,
                                                                                   monkeypatch):
    from tweetcls.commands import predict
    from tweetcls.predictor import Predictor

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded: torch.set_num_threads(100000) segfaults (exit 139)")

    monkeypatch.setattr(Predictor, "from_run", never)
    assert predict.main([str(run_dir), "--threads", "100000", "hello"]) == 2
    assert f"use at most --threads {os.cpu_count()}" in _one_line(capsys)
    assert predict.main([str(run_dir), "--output", str(tmp_path / "no" / "such" / "out.csv"), "hello"]) == 2
    assert "--output must be a file path in an existing folder" in _one_line(capsys)


# --- 3b. a run is finished only when all its files are written ------------------------------------

def test_a_failure_while_writing_the_events_leaves_a_run_that_resume_finishes(tiny_model_dir, tiny_csv, tmp_path,
                                                                              capsys, monkeypatch):
    """ENOSPC after results.json cut the TensorBoard file short, and --resume said "already finished"."""
    from tweetcls.commands import train
    from tweetcls.training import pipeline

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "log_run_end", disk_full)
        assert train.main(_train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs")) == 1
    assert "no space left on device" in _one_line(capsys)
    run = tmp_path / "runs" / "r"
    assert not (run / "results.json").exists()  # not finished: its files are not all written
    assert train.main(["--resume", str(run), "--no-progress-bar"]) == 0
    assert json.loads((run / "results.json").read_text())["val"]


def test_a_lora_rank_wider_than_the_layers_is_refused_before_the_run_folder(tiny_model_dir, tiny_csv, tmp_path,
                                                                            capsys):
    from tweetcls.commands import train

    assert train.main(_train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs", "--lora-r", "2000000000")) == 2
    assert "--lora-r 2000000000 exceeds the width" in _one_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("damage, words", [
    ("abstain", "abstain.json is not a valid abstain file"),
    ("meta", "tweetcls.json is not valid JSON"),
    ("onnx", "model.onnx is not a readable ONNX model"),
])
def test_a_damaged_file_in_a_run_is_one_line(run_dir, tmp_path, capsys, damage, words):
    import shutil

    from tweetcls.commands import predict

    run = shutil.copytree(run_dir, tmp_path / "run")
    target = [str(run)]
    if damage == "abstain":
        (run / "abstain.json").write_text('{"threshold": 0.5')
    else:  # the ONNX export predict.py makes on first use, then damaged
        assert predict.main([str(run), "--backend", "onnx", "hello"]) == 0
        capsys.readouterr()
        onnx = next(run.rglob("model.onnx"))
        if damage == "meta":
            (onnx.parent / "tweetcls.json").write_text("{not json")
            target = [str(onnx.parent)]
        else:
            onnx.write_bytes(onnx.read_bytes()[:1000])
        target += ["--backend", "onnx"]
    assert predict.main([*target, "hello"]) == 2
    line = _one_line(capsys)
    assert line.startswith("predict.py: error: ") and words in line, line


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "serve"])
def test_a_read_only_disk_is_one_line_naming_the_path_in_every_command(run_dir, tmp_path, capsys, monkeypatch,
                                                                       command):
    """EROFS is no PermissionError: it was a traceback in each of these."""
    import importlib

    module = importlib.import_module(f"tweetcls.commands.{command}")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "ro" / "out"))

    monkeypatch.setattr("tweetcls.core.quiet.quiet_libraries", read_only)
    if hasattr(module, "quiet_libraries"):
        monkeypatch.setattr(module, "quiet_libraries", read_only)
    argv = {"predict": [str(run_dir), "hello"], "evaluate": [str(run_dir)],
            "export": [str(run_dir), "--format", "onnx"], "serve": [str(run_dir)]}[command]
    assert module.main(argv) == 2
    line = _one_line(capsys)
    assert line == f"{command}.py: error: {tmp_path / 'ro' / 'out'}: the file system is read-only; choose a folder " \
                   "on a writable disk", line

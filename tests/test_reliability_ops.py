"""Issue 46, the operational findings: search workers that repeated each other's trials,
Lightning values that failed (or hung) only after the run folder existed, OSErrors as
tracebacks, a run called finished before its files were written, and predict.py holding
its whole input in memory. Each test was red before its fix."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import lightning  # noqa: F401  imported at collection: its log handlers bind to the real stderr, not a test's capture
import pytest

import tune
from tweetcls.search_space import suggest

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


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


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

    import train

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

    import train

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("NODE_RANK", "0")
    argv = _train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs", "--num-nodes", "2", "--node-timeout", "2",
                       "--accelerator", "cpu", "--devices", "1")
    assert train.main(argv) == 1  # no node 1: before the fix this waited 30 minutes
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train.py:")]
    assert "waits up to 2 s for the others at 127.0.0.1" in err[0], err
    assert err[-1].startswith("train.py: error: --num-nodes 2: not all nodes joined"), err


# --- 3. every OSError is one line with its path -----------------------------------------------------

@pytest.mark.parametrize("name, code", [("EROFS", 2), ("EACCES", 2), ("ENAMETOOLONG", 2), ("ENOTDIR", 2),
                                        ("ENOSPC", 1), ("EFBIG", 1)])
def test_each_os_error_class_is_one_line_naming_the_path(name, code, capsys):
    from tweetcls_core.errors import report

    err = OSError(getattr(errno, name), os.strerror(getattr(errno, name)), "/data/runs/r/results.json")
    assert report("x.py", err) == code
    line = _one_line(capsys)
    assert line.startswith("x.py: error: /data/runs/r/results.json: "), line


@pytest.mark.parametrize("name", ["ENOSPC", "EFBIG"])
def test_a_full_disk_and_a_file_size_limit_are_storage_errors_naming_the_target(name):
    from tweetcls_core.atomic import storage_error
    from tweetcls_core.errors import StorageFull

    err = storage_error(OSError(getattr(errno, name), os.strerror(getattr(errno, name))), "/runs/r/model")
    assert isinstance(err, StorageFull) and "/runs/r/model" in str(err)


@pytest.mark.parametrize("errname", ["EROFS", "EFBIG", "ENOSPC", "EACCES"])
def test_an_os_error_while_training_is_one_line_in_train_and_tune(tiny_model_dir, tiny_csv, tmp_path, capsys,
                                                                   monkeypatch, errname):
    """A read-only disk (EROFS, not PermissionError) or a file-size limit while a run writes."""
    import train
    import tune

    def refuse(*args, **kwargs):
        raise OSError(getattr(errno, errname), os.strerror(getattr(errno, errname)), str(tmp_path / "x" / "config.yaml"))

    monkeypatch.setattr("tweetcls_core.atomic.write_text_atomic", refuse)
    assert train.main(_train_argv(tiny_model_dir, tiny_csv, tmp_path / "runs")) in (1, 2)
    assert _one_line(capsys).startswith("train.py: error: ")
    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    monkeypatch.setattr("tune.study_storage", lambda *a: refuse())
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path / "t"),
            "--trials", "1", "--space", str(space), "--study-name", "s"]
    assert tune.main(argv) in (1, 2)
    assert _one_line(capsys).startswith("tune.py: error: ")


@pytest.mark.parametrize("flag_value", ["file", "long"])
def test_an_output_dir_under_a_file_or_a_run_name_too_long_is_one_line(tiny_model_dir, tiny_csv, tmp_path, capsys,
                                                                       flag_value):
    import train

    (tmp_path / "a-file").write_text("x")
    out, name = (tmp_path / "a-file" / "runs", "r") if flag_value == "file" else (tmp_path / "runs", "n" * 300)
    argv = _train_argv(tiny_model_dir, tiny_csv, out)
    argv[argv.index("--run-name") + 1] = name
    assert train.main(argv) == 2
    line = _one_line(capsys)
    assert ("not a file nor under one" in line) if flag_value == "file" else ("too long" in line and name in line)

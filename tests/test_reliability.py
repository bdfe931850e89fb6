"""Resume after a kill, reproducible runs, safe checkpoint loading, NaN losses."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tweetcls.commands import train

from conftest import REPO

CRASH = Path(__file__).with_name("crash_train.py")
SIGNAL = Path(__file__).with_name("signal_train.py")
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "TWEETCLS_RUN_DIR"}


def flags(model_dir, csv, out, name, *extra):
    return ["--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out), "--run-name", name,
            "--method", "lora", "--batch-size", "16", "--max-epochs", "3", "--lr", "5e-3", "--lora-dropout", "0.1",
            "--checkpoint-every-n-steps", "4", "--patience", "0", "--no-progress-bar", *extra]


def outcome(run_dir: Path) -> tuple[dict, dict]:
    results = json.loads((run_dir / "results.json").read_text())
    weights = load_file(str(run_dir / "model" / "model.safetensors"))
    return results, weights


def assert_same_run(a: Path, b: Path) -> None:
    """Same final weights and optimizer state (last.ckpt), same best model and metrics."""
    (ra, wa), (rb, wb) = outcome(a), outcome(b)
    assert ra["steps"] == rb["steps"] and ra["best_checkpoint"] == rb["best_checkpoint"]
    assert ra["val"] == rb["val"] and ra["test"] == rb["test"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    last_a, last_b = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in (a, b))
    assert last_a["global_step"] == last_b["global_step"] == ra["steps"]
    assert last_a["state_dict"].keys() == last_b["state_dict"].keys()
    for key, value in last_a["state_dict"].items():
        assert torch.equal(value, last_b["state_dict"][key]), key
    moments_a = [s["exp_avg"] for s in last_a["optimizer_states"][0]["state"].values()]
    moments_b = [s["exp_avg"] for s in last_b["optimizer_states"][0]["state"].values()]
    assert len(moments_a) == len(moments_b) > 0
    assert all(torch.equal(x, y) for x, y in zip(moments_a, moments_b))


@pytest.fixture(scope="module")
def reference_run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    assert train.main(flags(tiny_model_dir, tiny_csv, out, "ref")) == 0
    return out / "ref"


def test_same_seed_same_command_same_results(reference_run, tiny_model_dir, tiny_csv, tmp_path):
    assert train.main(flags(tiny_model_dir, tiny_csv, tmp_path, "again")) == 0
    assert_same_run(reference_run, tmp_path / "again")
    results = json.loads((tmp_path / "again" / "results.json").read_text())
    env = results["environment"]
    assert env["packages"]["torch"] and env["packages"]["lightning"] and env["packages"]["transformers"]
    import re

    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", env["git_commit"] or ""), env["git_commit"]  # this checkout's commit
    assert results["config"]["seed"] == 0 and results["config"]["lora_r"] == 8
    assert env["gpus"] == []  # CPU-only here: a timing is read against the devices it ran on


def test_the_environment_names_the_gpus_a_run_saw(monkeypatch):
    import torch

    from tweetcls.core.runs import environment

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"Card {i}")
    assert environment()["gpus"] == ["Card 0", "Card 1"]


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(reference_run, tiny_model_dir, tiny_csv, tmp_path):
    # 96 training rows / 16 = 6 steps an epoch; last.ckpt at step 8 (mid epoch 2), killed at step 10
    env = {k: v for k, v in os.environ.items() if k != "TWEETCLS_RUN_DIR"}
    killed = subprocess.run([sys.executable, str(CRASH), "10", "--", *flags(tiny_model_dir, tiny_csv, tmp_path, "run")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "run"
    assert not (run_dir / "results.json").exists()
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 8 and state["epoch"] == 1
    assert not list((run_dir / "checkpoints").glob(".*tmp*"))  # no torn temporary files left

    resumed = subprocess.run([sys.executable, str(REPO / "train.py"), "--resume", str(run_dir), "--no-progress-bar"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_run(reference_run, run_dir)
    # the resume is exact, so Lightning's "dataloader is not resumable ... unreliable results" must not be shown
    assert "not resumable" not in resumed.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["fit_seconds"] > 0


def test_resume_from_an_epoch_end_checkpoint_equals_an_uninterrupted_run(reference_run, tiny_model_dir, tiny_csv,
                                                                         tmp_path):
    # no step-interval saves: last.ckpt is the one written at the end of epoch 1 (step 6), killed at step 10
    argv = flags(tiny_model_dir, tiny_csv, tmp_path, "run", "--checkpoint-every-n-steps", "1000")
    killed = subprocess.run([sys.executable, str(CRASH), "10", "--", *argv], env=CHILD_ENV, capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 6
    # the epoch-end checkpoint knows the best checkpoint of its own epoch (it is written after ModelCheckpoint)
    best = [v for k, v in state["callbacks"].items() if k.startswith("ModelCheckpoint")][0]["best_model_path"]
    assert best.endswith("best-epoch=0-step=6.ckpt")
    assert train.main(["--resume", str(tmp_path / "run"), "--no-progress-bar"]) == 0
    assert_same_run(reference_run, tmp_path / "run")


def test_resume_after_the_last_epoch_scores_the_best_checkpoint(reference_run, tiny_model_dir, tiny_csv, tmp_path):
    argv = flags(tiny_model_dir, tiny_csv, tmp_path, "run", "--checkpoint-every-n-steps", "1000")
    killed = subprocess.run([sys.executable, str(CRASH), "end", "--", *argv], env=CHILD_ENV, capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (tmp_path / "run" / "results.json").exists()
    assert train.main(["--resume", str(tmp_path / "run"), "--no-progress-bar"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["best_checkpoint"] is not None and (tmp_path / "run" / results["best_checkpoint"]).is_file()
    assert_same_run(reference_run, tmp_path / "run")


@pytest.mark.parametrize("signal_name, code, said", [("TERM", 143, "stopped by SIGTERM at step 10"),
                                                     ("INT", 130, "interrupted at step 10")])
def test_a_signal_exits_nonzero_and_says_how_to_resume(reference_run, tiny_model_dir, tiny_csv, tmp_path,
                                                       signal_name, code, said):
    argv = flags(tiny_model_dir, tiny_csv, tmp_path, "run", "--checkpoint-every-n-steps", "4")
    stopped = subprocess.run([sys.executable, str(SIGNAL), signal_name, "10", "--", *argv], env=CHILD_ENV,
                             capture_output=True, text=True, timeout=600)
    assert stopped.returncode == code, stopped.stderr[-2000:]
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert said in last_line and f"python train.py --resume {tmp_path / 'run'}" in last_line, last_line
    assert not (tmp_path / "run" / "results.json").exists()
    # SIGTERM saves the step it stopped at; Ctrl-C keeps the last periodic save (step 8)
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert saved == (10 if signal_name == "TERM" else 8)
    assert train.main(["--resume", str(tmp_path / "run"), "--no-progress-bar"]) == 0
    assert_same_run(reference_run, tmp_path / "run")


def test_resume_refuses_a_finished_run(reference_run, capsys):
    assert train.main(["--resume", str(reference_run)]) == 2
    assert "already finished" in capsys.readouterr().err


class Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def interrupted_run(tmp_path: Path, checkpoint: bytes) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("method: lora\nseed: 0\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(checkpoint)
    return run_dir


def test_checkpoint_with_pickled_code_is_refused_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run_dir = interrupted_run(tmp_path, pickle.dumps({"state_dict": {}, "evil": Payload(str(marker))}))
    assert train.main(["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing checkpoint" in err[0] and "last.ckpt" in err[0]
    assert not marker.exists()


def test_corrupt_checkpoint_is_a_clear_error(reference_run, tmp_path, capsys):
    whole = (reference_run / "checkpoints" / "last.ckpt").read_bytes()
    run_dir = interrupted_run(tmp_path, whole[: len(whole) // 2])
    assert train.main(["--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing checkpoint" in err[0] and "corrupt" in err[0]


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(tiny_model_dir, tiny_csv, tmp_path, capsys):
    argv = flags(tiny_model_dir, tiny_csv, tmp_path, "nan", "--method", "full", "--lr", "1e30",
                 "--checkpoint-every-n-steps", "1", "--warmup-ratio", "0")
    assert train.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training loss became" in err[0] and "at step" in err[0], err
    assert "last good checkpoint is" in err[0]
    last = tmp_path / "nan" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] >= 1
    assert not (tmp_path / "nan" / "results.json").exists()


def test_evaluate_on_a_run_with_a_corrupt_model_file(reference_run, tmp_path, capsys):
    import shutil

    from tweetcls.commands import evaluate

    broken = tmp_path / "broken"
    shutil.copytree(reference_run, broken)
    # evaluate.py reads a LoRA run's adapter (it scores the run as training did) and falls back to
    # model/ when the adapter cannot be used: both damaged leave nothing to score
    for weights in (broken / "adapter" / "adapter_model.safetensors", broken / "model" / "model.safetensors"):
        if weights.is_file():
            weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])
    assert evaluate.main([str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot load a classifier from" in err[0] and str(broken / "model") in err[0], err


def test_a_damaged_adapter_file_is_one_usage_error_naming_it(reference_run, tmp_path):
    """A cut-short adapter_model.safetensors: a UsageError naming the file, not safetensors' traceback."""
    import shutil

    from tweetcls.lora.adapter_io import load_adapter
    from tweetcls.loader import load_run
    from tweetcls.core.errors import UsageError

    broken = tmp_path / "adapter"
    shutil.copytree(reference_run / "adapter", broken)
    weights = broken / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])
    model = load_run(reference_run).model
    with pytest.raises(UsageError, match=f"adapter file {weights} is damaged or cut short"):
        load_adapter(model, broken)

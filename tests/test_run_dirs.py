"""Run directories: --overwrite deletes only runs, one process per run directory, and a full
disk leaves nothing half-written behind."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import train
from tweetcls_core.atomic import atomic_directory, write_text_atomic
from tweetcls_core.errors import StorageFull
from tweetcls_core.run_lock import RunLock


def argv(model_dir, csv, out, name, *extra):
    return ["--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out), "--run-name", name,
            "--batch-size", "16", "--max-epochs", "1", "--lr", "5e-3", "--no-progress-bar", *extra]


def run_main(capsys, args) -> tuple[int, list[str]]:
    code = train.main(args)
    return code, capsys.readouterr().err.strip().splitlines()


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture()
def crowded_output_dir(tmp_path) -> Path:
    """An output dir holding an earlier run and a user's own file, beside a file of the parent's."""
    out = tmp_path / "runs"
    (out / "earlier").mkdir(parents=True)
    (out / "earlier" / "config.yaml").write_text("method: lora\n")
    (out / "notes.txt").write_text("mine")
    (tmp_path / "precious.txt").write_text("also mine")
    return out


@pytest.mark.parametrize("name", [".", "..", "a/b", "../escape", ".hidden", "/abs"])
def test_run_names_that_are_paths_are_refused(tiny_model_dir, tiny_csv, crowded_output_dir, capsys, name):
    before = tree(crowded_output_dir.parent)
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, crowded_output_dir, name, "--overwrite"))
    assert code == 2 and len(err) == 1 and "is not a plain folder name" in err[0], err
    assert tree(crowded_output_dir.parent) == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(tiny_model_dir, tiny_csv, crowded_output_dir, capsys):
    mine = crowded_output_dir / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"\xff\xd8")
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, crowded_output_dir, "photos", "--overwrite"))
    assert code == 2 and len(err) == 1 and "is not a run directory written by train.py" in err[0], err
    assert (mine / "cat.jpg").read_bytes() == b"\xff\xd8"


def test_overwrite_replaces_a_run_and_nothing_else(tiny_model_dir, tiny_csv, crowded_output_dir, capsys):
    (crowded_output_dir / "earlier" / "stale.txt").write_text("from the earlier run")
    code, _ = run_main(capsys, argv(tiny_model_dir, tiny_csv, crowded_output_dir, "earlier", "--overwrite"))
    assert code == 0
    assert not (crowded_output_dir / "earlier" / "stale.txt").exists()
    assert (crowded_output_dir / "earlier" / "results.json").is_file()
    assert (crowded_output_dir / "notes.txt").read_text() == "mine"
    assert (crowded_output_dir.parent / "precious.txt").read_text() == "also mine"


def test_a_run_directory_in_use_is_refused_with_the_owner_pid(tiny_model_dir, tiny_csv, tmp_path, capsys):
    run_dir = tmp_path / "busy"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("method: lora\nseed: 0\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"in progress")
    with RunLock(run_dir):  # what a training process holds while it runs
        for args in (argv(tiny_model_dir, tiny_csv, tmp_path, "busy", "--overwrite"), ["--resume", str(run_dir)]):
            code, err = run_main(capsys, args)
            assert code == 2 and len(err) == 1, err
            assert f"is in use by process {os.getpid()}" in err[0], err
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == b"in progress"


def test_the_lock_is_held_by_another_process_too(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tweetcls_core.run_lock import RunLock;"
                               "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
                               str(tmp_path / "run")], cwd=Path(train.__file__).parent, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock file is stale and is taken over
    assert (tmp_path / "run" / ".lock").read_text().strip() == str(holder.pid)
    with RunLock(tmp_path / "run"):
        assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())


def test_a_full_disk_while_saving_the_model_leaves_no_half_model_and_loses_no_training(
        tiny_model_dir, tiny_csv, tmp_path, capsys, monkeypatch):
    from transformers import PreTrainedModel

    real_save = PreTrainedModel.save_pretrained

    def save_until_full(self, folder, *args, **kwargs):
        Path(folder, "model.safetensors").write_bytes(b"\0" * 100)  # the part that fit
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_until_full)
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, tmp_path, "full"))
    run_dir = tmp_path / "full"
    assert code == 1
    assert err[-1].startswith("train.py: error: no space left on device writing " + str(run_dir.resolve() / "model")), err
    assert not (run_dir / "model").exists() and not (run_dir / "results.json").exists()
    assert not [p for p in tree(run_dir) if ".tmp" in p], tree(run_dir)
    # space freed: the trained state is still there and the run finishes from it
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", real_save)
    code, err = run_main(capsys, ["--resume", str(run_dir), "--no-progress-bar"])
    assert code == 0, err
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 6


def test_atomic_writes_keep_the_old_file_and_folder_whole_when_the_disk_fills(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("old")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights").write_text("old weights")

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageFull, match=f"no space left on device writing {target}"):
        write_text_atomic(target, "new")
    with pytest.raises(StorageFull, match=f"no space left on device writing {folder}"):
        with atomic_directory(folder) as tmp:
            (tmp / "weights").write_text("new weigh")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and (folder / "weights").read_text() == "old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "results.json"]
    with atomic_directory(folder) as tmp:
        (tmp / "weights").write_text("new weights")
    assert (folder / "weights").read_text() == "new weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "results.json"]

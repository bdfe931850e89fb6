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

from tweetcls.commands import train
from tweetcls.core.atomic import atomic_directory, write_text_atomic
from tweetcls.core.errors import StorageFull
from tweetcls.core.run_lock import RunLock

from conftest import REPO


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


@pytest.mark.parametrize("lookalike", ["config", "empty-checkpoints", "results"])
def test_overwrite_refuses_a_folder_that_only_looks_like_a_run(tiny_model_dir, tiny_csv, tmp_path, capsys, lookalike):
    """A file name proves nothing: a user's folder with a config.yaml, an empty checkpoints/ or a
    results.json of its own is not a run, and --overwrite must not empty it."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("\\chapter{One}")
    {"config": lambda: (mine / "config.yaml").write_text("seed: 1\n"),
     "empty-checkpoints": lambda: (mine / "checkpoints").mkdir(),
     "results": lambda: (mine / "results.json").write_text("{}")}[lookalike]()
    before = tree(mine)
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, tmp_path, "thesis", "--overwrite"))
    assert code == 2 and len(err) == 1 and "is not a run directory written by train.py" in err[0], err
    assert tree(mine) == before and (mine / "thesis.tex").read_text() == "\\chapter{One}"


@pytest.fixture()
def finished_run(tiny_model_dir, tiny_csv, tmp_path, capsys) -> Path:
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, tmp_path / "runs", "earlier"))
    assert code == 0, err
    return tmp_path / "runs" / "earlier"


def test_overwrite_replaces_a_run_train_py_wrote_and_nothing_beside_it(tiny_model_dir, tiny_csv, finished_run, capsys):
    out = finished_run.parent
    (out / "notes.txt").write_text("mine")
    (out.parent / "precious.txt").write_text("also mine")
    first = json.loads((finished_run / "results.json").read_text())["environment"]["created_utc"]
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, out, "earlier", "--overwrite", "--seed", "3"))
    assert code == 0, err
    assert json.loads((finished_run / "results.json").read_text())["seed"] == 3
    assert json.loads((finished_run / "results.json").read_text())["environment"]["created_utc"] >= first
    assert (out / "notes.txt").read_text() == "mine" and (out.parent / "precious.txt").read_text() == "also mine"


@pytest.mark.parametrize("where", ["top", "nested-folder"])
def test_overwrite_refuses_a_run_holding_a_users_file(tiny_model_dir, tiny_csv, finished_run, capsys, where):
    """A user's notes put into a run are named, and nothing of the run or the notes is deleted."""
    notes = finished_run / "analysis.ipynb" if where == "top" else finished_run / "figures" / "f1.png"
    notes.parent.mkdir(exist_ok=True)
    notes.write_text("mine")
    before = tree(finished_run)
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, finished_run.parent, "earlier", "--overwrite"))
    assert code == 2 and len(err) == 1 and "did not write" in err[0] and notes.relative_to(finished_run).parts[0] in err[0], err
    assert tree(finished_run) == before and notes.read_text() == "mine"


def test_a_copied_run_is_not_proof(tiny_model_dir, tiny_csv, finished_run, capsys):
    """The marker names the folder it was written in: copied into a user's folder (cp -r) it proves nothing."""
    import shutil

    copy = finished_run.parent / "copy"
    shutil.copytree(finished_run, copy)
    code, err = run_main(capsys, argv(tiny_model_dir, tiny_csv, finished_run.parent, "copy", "--overwrite"))
    assert code == 2 and "is not a run directory written by train.py" in err[0], err
    assert (copy / "results.json").is_file()


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
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tweetcls.core.run_lock import RunLock;"
                               "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
                               str(tmp_path / "run")], cwd=REPO, stdout=subprocess.PIPE, text=True)
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
    with atomic_directory(folder, "model") as tmp:
        (tmp / "weights").write_text("old weights")
    real_fsync = os.fsync

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageFull, match=f"no space left on device writing {target}"):
        write_text_atomic(target, "new")
    with pytest.raises(StorageFull, match=f"no space left on device writing {folder}"):
        with atomic_directory(folder, "model") as tmp:
            (tmp / "weights").write_text("new weigh")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and (folder / "weights").read_text() == "old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "results.json"]
    monkeypatch.setattr(os, "fsync", real_fsync)
    with atomic_directory(folder, "model") as tmp:  # a folder this project wrote is replaced whole
        (tmp / "weights").write_text("new weights")
    assert (folder / "weights").read_text() == "new weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "results.json"]


@pytest.mark.parametrize("case", ["users-folder", "user-file-inside", "other-kind", "copied-marker"])
def test_atomic_directory_never_replaces_what_it_did_not_write(tmp_path, case):
    from tweetcls.core.errors import UsageError

    folder = tmp_path / "out"
    if case == "users-folder":
        folder.mkdir()
        (folder / "thesis.txt").write_text("mine")
    else:
        with atomic_directory(folder if case != "copied-marker" else tmp_path / "orig", "onnx") as tmp:
            (tmp / "model.onnx").write_text("graph")
        if case == "user-file-inside":
            (folder / "sub").mkdir()
            (folder / "sub" / "data.csv").write_text("mine")
        if case == "copied-marker":
            import shutil
            shutil.copytree(tmp_path / "orig", folder)
            (folder / "thesis.txt").write_text("mine")
    before = tree(folder)
    kind = "model" if case == "other-kind" else "onnx"
    with pytest.raises(UsageError, match="nothing was changed"):
        with atomic_directory(folder, kind) as tmp:
            (tmp / "model.onnx").write_text("new graph")
    assert tree(folder) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

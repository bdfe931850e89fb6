"""Issue 46, the leftovers (stale temporaries, serve's --max-chars on uploads, old-Mac line ends,
labels differing in case, duplicate ids, duplicate ledger variants): each test was red before its fix."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, make_texts


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


# --- 1. a writer killed with SIGKILL ----------------------------------------------------------------

WRITER = """
import sys, time
from tweetcls.core.atomic import atomic_directory
with atomic_directory(sys.argv[1], "export") as folder:
    (folder / "model.onnx").write_text("half")
    print(folder.name, flush=True)
    time.sleep(60)
"""


def test_the_temporary_folder_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """`kill -9` during export.py --out DIR left .DIR.tmp-PID beside DIR forever; the next write removes
    it, and only it: a live process's folder and folders of other names stay."""
    from tweetcls.core.atomic import atomic_directory

    target = tmp_path / "onnx"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    stale = tmp_path / writer.stdout.readline().strip()
    assert stale.name == f".onnx.tmp-{writer.pid}" and stale.is_dir()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL and stale.is_dir()  # kill -9 ran no cleanup

    kept = [tmp_path / ".onnx.tmp-1",  # init: a live process
            tmp_path / f".onnx.tmp-{writer.pid}x", tmp_path / f".onnx.tmp-{writer.pid}.bak",
            tmp_path / f".other.tmp-{writer.pid}", tmp_path / f"onnx.tmp-{writer.pid}"]
    for folder in kept:
        folder.mkdir()
    (tmp_path / f".onnx.tmp-{writer.pid + 1}").write_text("a file, not a folder")  # pid + 1 may be alive: kept either way
    with atomic_directory(target, "export") as folder:
        (folder / "model.onnx").write_text("whole")
    assert not stale.exists()
    assert (target / "model.onnx").read_text() == "whole"
    assert all(folder.is_dir() for folder in kept)
    assert (tmp_path / f".onnx.tmp-{writer.pid + 1}").is_file()

"""The installed project claims one import name, `tweetcls`, and one command (issue 51).

The wheel is built from the checkout's files and installed into a fresh virtual environment
beside Hugging Face's `evaluate` (a dev dependency: the import name this project's evaluate.py
once took from it). Outside the checkout both import, each as itself, no top-level name of the
checkout's folders or scripts is importable, and the `tweetcls` command runs. The fresh
environment borrows the test environment's third-party packages through a path file (torch is
not installed twice); that path file adds no import hook, so nothing of the checkout leaks in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO

CHECKOUT_NAMES = ("lora", "distill", "compress", "datamodules", "mlm", "training", "core", "commands",
                  "train", "evaluate", "predict", "export", "serve", "tune", "pretrain")


def tracked_files(target: Path) -> None:
    """The checkout as a clean clone has it: building in place would leave build/ and egg-info."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the built wheel; returns its bin/ folder."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to build from")
    work = tmp_path_factory.mktemp("packaging")
    source, wheels, venv = work / "source", work / "wheels", work / "venv"
    tracked_files(source)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), "-q"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("tweetcls-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    fresh = venv / "bin" / "python"
    fresh_site = Path(subprocess.run([str(fresh), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh), "install", "--no-deps", "--no-index",
                           "--ignore-installed", "-q", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin"


def run_outside(bin_dir: Path, *argv: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(list(argv), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_installs_beside_hugging_face_evaluate(installed, tmp_path):
    code = ("import evaluate, tweetcls, tweetcls.lora, tweetcls.commands.evaluate as ours\n"
            "print(evaluate.__file__); print(tweetcls.lora.__file__); print(ours.__file__)\n"
            "assert callable(evaluate.load), 'not Hugging Face evaluate'\n"
            "assert callable(tweetcls.lora.inject_lora) and callable(ours.main)\n")
    done = run_outside(installed, str(installed / "python"), "-c", code, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    hf, lora, ours = done.stdout.split()
    venv = str(installed.parent)
    assert hf.endswith("site-packages/evaluate/__init__.py")  # Hugging Face's package, not a module of ours
    assert lora.startswith(venv) and ours.startswith(venv)  # the wheel's copy, not the checkout's


def test_the_wheel_claims_no_other_top_level_name(installed, tmp_path):
    code = ("import importlib.util as u, sys\n"
            f"names = {CHECKOUT_NAMES!r}\n"
            "found = {n: u.find_spec(n).origin for n in names if n != 'evaluate' and u.find_spec(n)}\n"
            "print(found)\n"
            "sys.exit(1 if found else 0)\n")
    done = run_outside(installed, str(installed / "python"), "-c", code, tmp_path=tmp_path)
    assert done.returncode == 0, f"top-level names importable from the install: {done.stdout} {done.stderr[-500:]}"
    top_level = next((installed.parent / "lib").glob("python*/site-packages/tweetcls-*.dist-info/top_level.txt"), None)
    if top_level is not None:
        assert top_level.read_text().split() == ["tweetcls"]


def test_the_tweetcls_command_runs_outside_the_checkout(installed, tmp_path):
    listed = run_outside(installed, str(installed / "tweetcls"), "--help", tmp_path=tmp_path)
    assert listed.returncode == 0 and "train" in listed.stdout and "evaluate" in listed.stdout, listed.stderr
    helped = run_outside(installed, str(installed / "tweetcls"), "train", "--help", tmp_path=tmp_path)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert helped.stdout.startswith("usage: tweetcls train") and "--method" in helped.stdout
    refused = run_outside(installed, str(installed / "tweetcls"), "train", "--lora-dropout", "1.5", tmp_path=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "tweetcls train: error: --lora-dropout must be a number in [0, 1), got '1.5'"
    assert list(tmp_path.iterdir()) == []
    unknown = run_outside(installed, str(installed / "tweetcls"), "trian", tmp_path=tmp_path)
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr

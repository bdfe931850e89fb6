"""Run directories and the ``results.json`` each run leaves behind."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from core.errors import UsageError

RESULTS_FILE = "results.json"
TRACKED_PACKAGES = ("torch", "lightning", "transformers", "datasets", "torchmetrics", "tokenizers", "safetensors")


def check_run_dir(output_dir: str | Path, run_name: str, overwrite: bool = False) -> Path:
    """``output_dir/run_name``, refused if it holds an earlier run (unless ``overwrite``).

    Called before any slow work, so a name clash costs no time.
    """
    run_dir = Path(output_dir) / run_name
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise UsageError(f"run directory {run_dir} already exists; choose another --run-name or pass --overwrite")
    return run_dir


def new_run_dir(output_dir: str | Path, run_name: str, overwrite: bool = False) -> Path:
    """Create ``output_dir/run_name``; refuse to reuse an existing run unless asked."""
    run_dir = check_run_dir(output_dir, run_name, overwrite)
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def dataset_slug(dataset: str) -> str:
    """'tweet_eval/emotion' -> 'tweet_eval-emotion'; a data file -> its stem."""
    if Path(dataset).suffix.lower() in (".csv", ".tsv", ".json", ".jsonl"):
        return Path(dataset).stem
    return dataset.replace("/", "-")


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def git_commit() -> str | None:
    """The commit of this code, with '+dirty' when the tree has local changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def environment() -> dict:
    """Library versions, machine and code version, so a run can be repeated later."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "packages": versions,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: str | Path, data: dict) -> None:
    """Write atomically: a crash mid-write never leaves half a file."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        json.dump(data, tmp, indent=2, default=str)
        tmp.write("\n")
    os.replace(tmp.name, path)


def read_results(run_dir: str | Path) -> dict:
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} holds no run ({RESULTS_FILE} missing); pass a directory written by train.py")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is corrupt ({err.msg} at line {err.lineno})") from None

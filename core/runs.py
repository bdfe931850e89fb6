"""Run directories and the ``results.json`` each run leaves behind."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from tweetcls.core.errors import UsageError
from tweetcls.core.ownership import TEMPORARY, foreign_entries, mark, owner_kind, some
from tweetcls.core.run_lock import LOCK_FILE

TRACKED_PACKAGES = ("torch", "lightning", "transformers", "datasets", "torchmetrics", "tokenizers", "safetensors")


# what train.py, evaluate.py, predict.py, export.py and Lightning's TensorBoard logger write at the
# top of a run directory: --overwrite deletes these, and refuses a run holding anything else
RUN_ENTRIES = re.compile(r"^(config\.yaml|results\.json|hparams\.yaml|abstain\.json|checkpoints|model|adapter"
                         r"|data-files\.json|onnx|hf|peft|events\.out\.tfevents\..+|eval-.+\.json|compression-.+|compression)$")


def check_run_name(run_name: str) -> None:
    """A run name is one plain folder name: never a path that could point outside --output-dir."""
    if (not run_name or run_name in (".", "..") or "/" in run_name or "\\" in run_name
            or run_name != run_name.strip() or run_name.startswith(".")):
        raise UsageError(f"--run-name {run_name!r} is not a plain folder name; use letters, digits, - and _ "
                         "(no /, no leading ., not . or ..)")


def check_run_dir(output_dir: str | Path, run_name: str, overwrite: bool = False) -> Path:
    """``output_dir/run_name``, refused if it holds an earlier run (unless ``overwrite``), and
    refused whatever ``overwrite`` says unless train.py provably made it (its ownership marker,
    core/ownership.py) and it holds nothing train.py and the other commands did not write.
    --overwrite never deletes a user's file: a folder that merely holds a config.yaml is not a run.

    Called before any slow work, so a name clash costs no time.
    """
    check_run_name(run_name)
    run_dir = Path(output_dir) / run_name
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise UsageError(f"{run_dir} exists and is not a run directory; choose another --run-name")
    if run_dir.exists() and _holds_more_than_a_lock(run_dir):
        if not overwrite:
            raise UsageError(f"run directory {run_dir} already exists; choose another --run-name or pass --overwrite")
        if owner_kind(run_dir) != "run":
            raise UsageError(f"{run_dir} is not a run directory written by train.py (it holds no marker of one); "
                             "--overwrite only replaces runs, choose another --run-name")
        foreign = foreign_entries(run_dir, RUN_ENTRIES) + foreign_inside(run_dir)
        if foreign:
            raise UsageError(f"{run_dir} holds files train.py did not write ({some(foreign)}); --overwrite "
                             "would delete them: move them out or choose another --run-name")
    return run_dir


CHECKPOINT_ENTRIES = re.compile(r"^.+\.ckpt$")


def foreign_inside(run_dir: Path) -> list[str]:
    """What --overwrite would delete inside the run's folders that this project did not write
    (a note in checkpoints/, a file added to model/): each as run-relative path."""
    found = []
    for entry in sorted(run_dir.iterdir()):
        if not entry.is_dir() or entry.is_symlink() or not RUN_ENTRIES.match(entry.name):
            continue
        if entry.name == "checkpoints":
            inner = foreign_entries(entry, CHECKPOINT_ENTRIES)
        elif entry.name == "compression":
            inner = foreign_ledger_logs(entry)
        elif owner_kind(entry) is not None:
            inner = foreign_entries(entry)
        else:  # a folder of ours that carries no marker (TensorBoard's, a ledger's): only our kinds of files
            inner = [str(p.relative_to(entry)) for p in entry.rglob("*")
                     if p.is_file() and not RUN_ENTRIES.match(p.name) and p.suffix not in (".json", ".csv", ".md")]
        found += [f"{entry.name}/{name}" for name in inner]
    return found


def foreign_ledger_logs(folder: Path) -> list[str]:
    """What RUN/compression/ holds besides evaluate.py's ledger logs (each a marked folder that nobody
    added to, or an interrupted write's leftover). That folder was not in RUN_ENTRIES: any ledger run on
    a run made its --overwrite refuse the run for holding files train.py did not write."""
    found = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink() and owner_kind(child) == "compression-log":
            found += [f"{child.name}/{name}" for name in foreign_entries(child)]
        elif not (child.is_dir() and TEMPORARY.match(child.name)):
            found.append(child.name)
    return found


def _holds_more_than_a_lock(run_dir: Path) -> bool:
    return any(p.name != LOCK_FILE for p in run_dir.iterdir())


def empty_run_dir(run_dir: Path) -> None:
    """Remove everything in a run directory but the lock of the process that holds it (callers
    have checked that it holds only what the commands write there)."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def new_run_dir(output_dir: str | Path, run_name: str, overwrite: bool = False) -> Path:
    """Create ``output_dir/run_name`` and mark it as a run; refuse to reuse an existing run unless
    asked. The lock file of the process that holds the directory (core/run_lock.py) is kept."""
    run_dir = check_run_dir(output_dir, run_name, overwrite)
    if run_dir.exists():
        empty_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mark(run_dir, "run", files=[])
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


def _gpu_names() -> list[str]:
    """The CUDA devices this process sees (empty on a CPU machine): a timing means little without them."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


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
        "gpus": _gpu_names(),
        "git_commit": git_commit(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: str | Path, data: dict) -> None:
    """Write atomically: a crash or a full disk mid-write never leaves half a file."""
    from tweetcls.core.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")

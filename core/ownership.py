"""Folders this project wrote, proven by a marker, so that nothing else is ever deleted or replaced.

A file name proves nothing: a user's thesis folder may hold a ``config.yaml`` or a
``checkpoints/`` of its own. Every folder this project makes and may later replace (a run
directory; a model, adapter or export folder) carries ``OWNER_FILE``, which records the kind of
folder, the folder's own identity (device and inode) and the files written into it. The identity
survives the rename that ends an atomic write but not a copy, so a marker copied into another
folder proves nothing. A proven folder is replaced only when it holds nothing but what was
recorded: a user's file inside it is named and the replacement refused.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tweetcls.core.errors import UsageError
from tweetcls.core.run_lock import LOCK_FILE

OWNER_FILE = ".tweetcls-owner.json"
TEMPORARY = re.compile(r"^\..+\.(tmp|old)(-\d+)?$")  # what an interrupted atomic write of ours leaves


def _identity(folder: Path) -> str:
    st = os.stat(folder)
    return f"{st.st_dev}:{st.st_ino}"


def _read(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def mark(folder: str | Path, kind: str, files: list[str] | None = None) -> None:
    """Claim ``folder`` (made by this process just now) as a ``kind`` folder holding ``files``
    (default: what it holds now)."""
    folder = Path(folder)
    if files is None:
        files = sorted(p.name for p in folder.iterdir() if p.name != OWNER_FILE)
    marker = {"written_by": "tweetcls", "kind": kind, "folder": _identity(folder), "files": sorted(set(files))}
    (folder / OWNER_FILE).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def record(folder: str | Path, *names: str) -> None:
    """Add ``names`` (just written into an owned ``folder``) to what it is known to hold."""
    folder = Path(folder)
    marker = _read(folder)
    if marker is None or marker.get("folder") != _identity(folder):
        return  # not ours to vouch for: it stays unreplaceable
    mark(folder, marker["kind"], [*marker.get("files", []), *names])


def owner_kind(folder: str | Path) -> str | None:
    """The kind this project recorded for ``folder``, or None when the marker is absent, broken or
    was copied in from another folder."""
    folder = Path(folder)
    marker = _read(folder) if folder.is_dir() and not folder.is_symlink() else None
    if not marker or marker.get("written_by") != "tweetcls" or marker.get("folder") != _identity(folder):
        return None
    return str(marker.get("kind"))


def foreign_entries(folder: str | Path, allowed: "re.Pattern[str] | None" = None) -> list[str]:
    """The entries of an owned ``folder`` this project did not write: not recorded, not matching
    ``allowed``, not the marker, the lock or an interrupted write's leftover."""
    folder = Path(folder)
    recorded = set((_read(folder) or {}).get("files", []))
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in recorded and p.name not in (OWNER_FILE, LOCK_FILE)
                  and not TEMPORARY.match(p.name) and not (allowed and allowed.match(p.name)))


def check_replaceable(folder: str | Path, kind: str, allowed: "re.Pattern[str] | None" = None) -> None:
    """Refuse (one line) to replace ``folder`` unless it is absent, empty, or a ``kind`` folder this
    project wrote that holds nothing else."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UsageError(f"{folder} exists and is not a folder this project wrote; choose a new or empty folder")
    if not folder.exists() or not any(p.name != LOCK_FILE for p in folder.iterdir()):
        return
    found = owner_kind(folder)
    if found is None:
        everything = sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
        raise UsageError(f"{folder} already holds files this project did not write ({some(everything)}); nothing was "
                         "changed: choose a new or empty folder, or remove it yourself")
    if found != kind:
        raise UsageError(f"{folder} is {_a(found)} folder, not {_a(kind)} folder; nothing was changed: "
                         "choose a new or empty folder")
    foreign = foreign_entries(folder, allowed)
    if foreign:
        raise UsageError(f"{folder} holds files this project did not write ({some(foreign)}); nothing was "
                         "changed: move them out or choose a new folder")


def _a(kind: str) -> str:
    """The kind with its article: "a run", "an onnx", "an hf" (said aitch-eff)."""
    return f"{'an' if kind[:1] in 'aeiou' or kind == 'hf' else 'a'} {kind}"


def some(names: list[str]) -> str:
    """The first three names, for a one-line error."""
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

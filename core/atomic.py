"""Files and folders that appear whole or not at all, and a full disk named as such.

A result file or model folder that a crash or a full disk cut in half would be read
later as a result. Everything a run leaves behind is written next to its final name and
renamed into place, and a failed write removes what it had written.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from tweetcls.core.errors import StorageFull, UsageError


def storage_error(err: OSError, target: str | Path) -> OSError | StorageFull:
    """A StorageFull naming ``target`` for ENOSPC/EDQUOT/EFBIG (a full disk, a quota, ``ulimit -f``);
    any other OSError with ``target`` as its path where it had none, for the one line
    core/errors.py prints."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left on device writing {target}; free some space and run the command again")
    if err.errno == errno.EFBIG:
        return StorageFull(f"{target} grew past the file-size limit (ulimit -f) or what the file system allows; "
                           "raise the limit or write elsewhere, then run the command again")
    if err.filename is None:
        err.filename = str(target)
    return err


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename."""
    with atomic_file(path) as f:
        f.write(text)


@contextmanager
def atomic_file(path: str | Path, newline: str | None = None) -> Iterator[TextIO]:
    """A text stream into a temporary file beside ``path``, flushed to disk and renamed into place
    when the block ends; on any failure (or Ctrl-C) it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise storage_error(err, path) from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | Path, kind: str) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole, on any
    failure it is removed and ``path`` is left as it was.

    ``path`` must be absent, empty, or a ``kind`` folder this project wrote and nobody added to
    (core/ownership.py); anything else is refused before a byte is written."""
    from tweetcls.core.ownership import check_replaceable, mark

    path = Path(path)
    check_replaceable(path, kind)
    checked = _identity_of(path)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        if _identity_of(path) != checked:  # another command wrote it meanwhile (two exports to one --out at once:
            # both said done, and the one that finished first was gone, though one after the other is refused)
            raise UsageError(f"{path} was written by another command while this one worked; nothing was replaced: "
                             "run this command again when that one has finished, or give another folder")
        mark(tmp, kind)  # the marker's identity is the folder's inode, which the rename keeps
        if path.exists():
            old = path.with_name(f".{path.name}.old-{this_host()}-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as err:
        raise storage_error(err, path) from None
    except Exception as err:  # safetensors reports a failed write as its own error, "... (os error 27)"
        code = _os_error_code(err)
        if code is None:
            raise
        raise storage_error(OSError(code, os.strerror(code)), path) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _identity_of(path: Path) -> str | None:
    """The device and inode at ``path`` (None where nothing is): a folder replaced by a rename is another."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def this_host() -> str:
    """This machine's name (``socket.gethostname()``) as a part of a file name."""
    import socket

    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "unknown-host"


def temporary_name(path: Path) -> Path:
    """``.NAME.tmp-HOST-PID`` beside ``path``: atomic_directory's folder while it writes. The host is
    in the name because a PID means something only on its own machine (see remove_stale_temporaries)."""
    return path.with_name(f".{path.name}.tmp-{this_host()}-{os.getpid()}")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary folders ``.NAME.tmp-HOST-PID`` beside ``path`` that a killed writer of
    this host left (``kill -9`` skips every ``finally``), so they do not pile up; returns what was
    removed.

    Only a folder named exactly so, of this host, whose process is gone: a live PID's folder is
    another writer's work in progress. On a folder two machines share, another host's PID says
    nothing here (this machine's PID 4242 may be gone while that one's writes), so another host's
    folder is never removed; nor is one of the old name ``.NAME.tmp-PID``, which does not say
    which machine wrote it (those are left for a person to remove). Hosts that share a folder need
    distinct host names."""
    pattern = re.compile(re.escape(f".{path.name}.tmp-{this_host()}-") + r"([0-9]+)")
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:  # no folder yet (mkdir makes it) or unreadable: nothing of ours to clean
        return removed
    for sibling in siblings:
        found = pattern.fullmatch(sibling.name)
        if found and sibling.is_dir() and not sibling.is_symlink() and not _alive(int(found.group(1))):
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts: signal 0 is refused, not missing)."""
    if pid == os.getpid():
        return True  # ours: removed by its own writer
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but not ours; a PID too large to ask about is left alone too
    return True


def _os_error_code(err: Exception) -> int | None:
    """The errno inside a safetensors write error (not an OSError), or None."""
    import re

    if type(err).__name__ != "SafetensorError":
        return None
    found = re.search(r"\(os error (\d+)\)", str(err))
    return int(found.group(1)) if found else None

"""The local data files a run trained on, as they were: a file changed since is named, not used.

A local data file is split 80/10/10 with a fixed seed (datamodules/sources.py); a row added, removed
or edited moves rows between the splits. A resumed run then went on training on rows that had been
its test rows, and evaluate.py scored the run on rows it had trained on, both without a word (and a
relative --dataset read from another folder could be another file altogether). train.py records
each file's size and sha256 in RUN/data-files.json when the run starts; --resume and evaluate.py
compare the file they are about to read with that record and refuse (one line) when it differs.
A run from before this record has none and is not checked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tweetcls.core.errors import UsageError

DATA_FILES = "data-files.json"


def fingerprint(path: str | Path) -> dict:
    """The size and sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def local_files(files: dict[str, str | None]) -> dict[str, str]:
    """The options (--dataset, --val-file, --test-file) that name an existing file: path."""
    return {option: str(path) for option, path in files.items() if path and Path(path).is_file()}


def record_data_files(run_dir: Path, files: dict[str, str | None]) -> None:
    """Write RUN/data-files.json: each local data file's path, size and sha256 as the run read it."""
    from tweetcls.core.atomic import write_text_atomic

    found = {option: {"path": str(Path(path).resolve()), **fingerprint(path)}
             for option, path in local_files(files).items()}
    if found:
        write_text_atomic(Path(run_dir) / DATA_FILES, json.dumps(found, indent=1) + "\n")


def check_data_files(run_dir: Path | None, files: dict[str, str | None], harm: str, way_on: str) -> None:
    """Refuse when a file about to be read for ``--dataset``/``--val-file``/``--test-file`` is not the
    file recorded for that option when ``run_dir`` started (``harm``: what reading it would do;
    ``way_on``: what to do instead)."""
    try:
        recorded = json.loads((Path(run_dir) / DATA_FILES).read_text(encoding="utf-8")) if run_dir else {}
    except (OSError, ValueError):
        return  # a run from before the record: nothing to compare with
    for option, path in local_files(files).items():
        then = recorded.get(option) if isinstance(recorded, dict) else None
        if not isinstance(then, dict) or "sha256" not in then:
            continue
        now = fingerprint(path)
        if now["sha256"] != then["sha256"]:
            size = (f"{then.get('bytes')} bytes then, {now['bytes']} now" if then.get("bytes") != now["bytes"]
                    else "same size, other contents")
            raise UsageError(f"{option} {path} is not the file {run_dir} trained on ({size}): {harm}; {way_on}")

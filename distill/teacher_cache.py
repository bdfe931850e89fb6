"""Teacher logits, computed once per training example and cached on disk.

The teacher never runs during training: before the first epoch its logits for the
training texts are loaded from the cache, or computed in one inference pass and saved.
The cache key hashes the teacher's weights, its tokenizer, ``max_length`` and the exact
training texts (per chunk of CHUNK texts), so a retrained teacher or a changed dataset never
reuses stale logits. A bf16 run's teacher pass runs under bf16 autocast too, and is cached
apart from fp32's. Several teachers (an ensemble) are each cached apart; the student learns
from their mean logits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from tqdm.auto import tqdm
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

from tweetcls_core.errors import UsageError
from tweetcls_core.build import load_tokenizer
from tweetcls_core.pooling import apply_checkpoint_pooling
from tweetcls_core.precision import autocast_for, is_bf16
from tweetcls_core.surgery import config_label_names
from tweetcls_core.resolve import cache_root, sha256_of


def teacher_fingerprint(teacher_dir: Path) -> str:
    """sha256 over the teacher's weight, config and tokenizer files."""
    digest = hashlib.sha256()
    files = sorted(p for p in teacher_dir.iterdir() if p.suffix in (".safetensors", ".json", ".txt", ".model"))
    if not any(p.suffix == ".safetensors" for p in files):
        raise UsageError(f"teacher {teacher_dir} has no .safetensors weights")
    for path in files:
        digest.update(path.name.encode())
        digest.update(sha256_of(path).encode())
    return digest.hexdigest()


def align_labels(teacher_labels: list[str], student_labels: list[str]) -> list[int]:
    """Teacher logit column for each student label, matched by name, not by index."""
    if sorted(teacher_labels) != sorted(student_labels):
        raise UsageError(f"teacher labels {teacher_labels} differ from the dataset's {student_labels}; "
                         "distill from a teacher trained on the same label set")
    return [teacher_labels.index(name) for name in student_labels]


def load_logit_teacher(teacher_dir: Path, device: str = "cpu"):
    """(tokenizer, classifier in eval mode) of a fine-tuned teacher, with its pooling."""
    tokenizer = load_tokenizer(teacher_dir)
    model = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval().to(device)
    apply_checkpoint_pooling(model, teacher_dir)
    return tokenizer, model


@torch.inference_mode()
def teacher_logits(tokenizer, model, texts: list[str], max_length: int, batch_size: int = 64,
                   precision: str = "32-true", device: str = "cpu", progress=None) -> torch.Tensor:
    """Logits of ``texts`` in their order; batches of similar lengths (less padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    logits = torch.empty(len(texts), model.config.num_labels)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        with autocast_for(precision, torch.device(device).type):
            logits[idx] = model(**batch).logits.float().cpu()
        if progress is not None:
            progress.update(len(idx))
    return logits


def compute_teacher_logits(teacher_dir: Path, texts: list[str], max_length: int, batch_size: int = 64,
                           precision: str = "32-true", device: str = "cpu") -> tuple[torch.Tensor, list[str]]:
    tokenizer, model = load_logit_teacher(teacher_dir, device)
    return (teacher_logits(tokenizer, model, texts, max_length, batch_size, precision, device),
            config_label_names(model.config))


CHUNK = 5000  # texts per cache file: a transfer set of 10k reuses the first two files of 30k's


def _key(*parts: str) -> str:
    key = hashlib.sha256()
    for part in parts:
        key.update(part.encode())
        key.update(b"\x1f")
    return key.hexdigest()[:32]


def cached_teacher_logits(teacher_dir: str | Path, texts: list[str], student_labels: list[str],
                          max_length: int, precision: str = "32-true", device: str = "cpu") -> tuple[torch.Tensor, Path]:
    """(logits in the student's label order, cache folder of this teacher, max length and precision).

    The texts are cached in chunks of CHUNK, each keyed by its texts, so a pass over a large
    transfer set that stops midway resumes at its last chunk, and a transfer set that is a
    prefix of another reuses its logits. Memory holds one chunk's batches at a time."""
    teacher_dir = Path(teacher_dir)
    folder = cache_root() / "teacher_logits" / _key(teacher_fingerprint(teacher_dir), str(max_length),
                                                     *(("bf16",) if is_bf16(precision) else ()))
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    paths = [folder / f"{_key(chr(30).join(chunk))}.safetensors" for chunk in chunks]
    missing = sum(len(chunk) for chunk, path in zip(chunks, paths) if not path.is_file())
    loaded, parts, labels = None, [], None
    with tqdm(total=missing, desc=f"teacher logits ({teacher_dir.parent.name or teacher_dir.name})", unit="text",
              disable=missing < CHUNK, mininterval=10) as progress:
        for chunk, path in zip(chunks, paths):
            if path.is_file():
                stored = load_file(str(path))
                logits, labels = stored["logits"], bytes(stored["labels"].tolist()).decode().split("\x1f")
            else:
                loaded = loaded or load_logit_teacher(teacher_dir, device)
                labels = config_label_names(loaded[1].config)
                logits = teacher_logits(*loaded, chunk, max_length, precision=precision, device=device,
                                        progress=progress)
                folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                encoded = torch.tensor(list("\x1f".join(labels).encode()), dtype=torch.uint8)
                save_file({"logits": logits.contiguous(), "labels": encoded}, str(tmp))
                tmp.replace(path)
            parts.append(logits)
    if labels is None:
        raise UsageError("no texts to compute teacher logits for")
    return torch.cat(parts)[:, align_labels(labels, student_labels)], folder


def ensemble_teacher_logits(teacher_dirs: list[Path], texts: list[str], student_labels: list[str],
                            max_length: int, precision: str = "32-true", device: str = "cpu") -> tuple[torch.Tensor, list[Path]]:
    """The mean of several teachers' logits (each cached apart), in the student's label order."""
    results = [cached_teacher_logits(d, texts, student_labels, max_length, precision, device) for d in teacher_dirs]
    return torch.stack([logits for logits, _ in results]).mean(0), [folder for _, folder in results]

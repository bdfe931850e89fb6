"""Teacher logits, computed once per training example and cached on disk.

The teacher never runs during training: before the first epoch its logits for the
training texts are loaded from the cache, or computed in one inference pass and saved.
The cache key hashes the teacher's weights, its tokenizer, ``max_length`` and the exact
training texts, so a retrained teacher or a changed dataset never reuses stale logits.
A bf16 run's teacher pass runs under bf16 autocast too, and is cached apart from fp32's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
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


@torch.inference_mode()
def compute_teacher_logits(teacher_dir: Path, texts: list[str], max_length: int, batch_size: int = 64,
                           precision: str = "32-true", device: str = "cpu") -> tuple[torch.Tensor, list[str]]:
    tokenizer = load_tokenizer(teacher_dir)
    model = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval().to(device)
    apply_checkpoint_pooling(model, teacher_dir)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: less padding
    logits = torch.empty(len(texts), model.config.num_labels)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        with autocast_for(precision, torch.device(device).type):
            logits[idx] = model(**batch).logits.float().cpu()
    return logits, config_label_names(model.config)


def cached_teacher_logits(teacher_dir: str | Path, texts: list[str], student_labels: list[str],
                          max_length: int, precision: str = "32-true", device: str = "cpu") -> tuple[torch.Tensor, Path]:
    """(logits in the student's label order, cache file). Computes (on ``device``) and saves on a miss."""
    teacher_dir = Path(teacher_dir)
    key = hashlib.sha256()
    parts = (teacher_fingerprint(teacher_dir), str(max_length), "\x1e".join(texts)) + (("bf16",) if is_bf16(precision) else ())
    for part in parts:
        key.update(part.encode())
        key.update(b"\x1f")
    path = cache_root() / "teacher_logits" / f"{key.hexdigest()[:32]}.safetensors"
    if path.is_file():
        stored = load_file(str(path))
        logits, labels = stored["logits"], bytes(stored["labels"].tolist()).decode().split("\x1f")
    else:
        logits, labels = compute_teacher_logits(teacher_dir, texts, max_length, precision=precision, device=device)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        encoded = torch.tensor(list("\x1f".join(labels).encode()), dtype=torch.uint8)
        save_file({"logits": logits.contiguous(), "labels": encoded}, str(tmp))
        tmp.replace(path)
    return logits[:, align_labels(labels, student_labels)], path

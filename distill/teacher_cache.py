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

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from tqdm.auto import tqdm
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

from tweetcls.core.errors import UsageError, lightning_interruptions
from tweetcls.core.build import load_tokenizer
from tweetcls.core.pooling import apply_checkpoint_pooling
from tweetcls.core.precision import autocast_for, is_bf16
from tweetcls.core.surgery import config_label_names
from tweetcls.core.resolve import cache_root, sha256_of


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


def tokenizer_fingerprint(teacher_dir: Path) -> str:
    """sha256 over the teacher's tokenizer files: teachers that share it share one tokenisation."""
    digest = hashlib.sha256()
    for path in sorted(p for p in teacher_dir.iterdir() if p.name.startswith(("tokenizer", "vocab", "special_tokens",
                                                                              "merges", "spiece", "sentencepiece"))):
        digest.update(path.name.encode())
        digest.update(sha256_of(path).encode())
    return digest.hexdigest()


class _Batches(torch.utils.data.Dataset):
    """Padded batches of pre-tokenised texts (each with its texts' positions), one item a batch."""

    def __init__(self, tokenizer, encodings: list[dict], batches: list[list[int]]) -> None:
        self.tokenizer, self.encodings, self.batches = tokenizer, encodings, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        idx = self.batches[i]
        batch = dict(self.tokenizer.pad([self.encodings[j] for j in idx], return_tensors="pt"))
        return batch | {"index": torch.tensor(idx)}


def rank_batches(texts: list[str], batch_size: int, rank: int, world_size: int) -> list[list[int]]:
    """This rank's share of the batches one process would make (texts of similar length together):
    every rank gets whole batches, so any number of processes computes the same batches, and so
    the same logits; the list is padded by repeating batches so no rank is left without one."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    while len(batches) % world_size:
        batches.append(batches[len(batches) % world_size - 1])
    return batches[rank::world_size]


class TeacherLogitModule(L.LightningModule):
    """The teacher as ``Trainer.predict`` runs it: (text positions, fp32 logits) per batch, under
    bf16 autocast where the run trains in bf16 (the cache keeps the two apart)."""

    def __init__(self, model, precision: str = "32-true") -> None:
        super().__init__()
        self.model, self.autocast_precision = model, precision

    def predict_step(self, batch: dict, batch_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = dict(batch)
        index = batch.pop("index")
        with autocast_for(self.autocast_precision, self.device.type):
            return index, self.model(**batch).logits.float()


class ChunkCacheWriter(BasePredictionWriter):
    """Fills the chunk cache from ``Trainer.predict``: at the end of a chunk's pass every rank's
    (positions, logits) are gathered, rank 0 writes the chunk's file, and every rank keeps the
    whole chunk's logits (``self.logits``) for its own training."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")
        self.path: Path | None = None
        self.size, self.labels, self.logits = 0, [], None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        parts = [(i.cpu(), x.cpu()) for i, x in predictions]
        if trainer.world_size > 1:
            gathered = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, parts)
            parts = [part for rank in gathered for part in rank]
        logits = torch.empty(self.size, len(self.labels))
        for index, values in parts:
            logits[index] = values
        self.logits = logits
        if trainer.is_global_zero:
            save_chunk(self.path, logits, self.labels)
        trainer.strategy.barrier("teacher-logit chunk written")


def save_chunk(path: Path, logits: torch.Tensor, labels: list[str]) -> None:
    """Written beside ``path`` under this process's own name, flushed to disk, then renamed: students of
    one teacher started together label the same chunks at once, and a shared temporary name let one
    rename the file another was still writing."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    encoded = torch.tensor(list("\x1f".join(labels).encode()), dtype=torch.uint8)
    try:
        save_file({"logits": logits.contiguous(), "labels": encoded}, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_chunk(path: Path, texts: int) -> tuple[torch.Tensor, list[str]] | None:
    """(logits, label names) of a cached chunk, or None when the file is not one whole chunk of
    ``texts`` rows (cut short by a crash before this cache was written atomically, or damaged): it is
    then labelled again, never trusted, and never a SafetensorError from deep inside the loader."""
    try:
        stored = load_file(str(path))
        logits, labels = stored["logits"], bytes(stored["labels"].tolist()).decode().split("\x1f")
    except (SafetensorError, OSError, KeyError, UnicodeDecodeError):  # cut short, damaged, not a chunk
        return None
    if logits.ndim != 2 or logits.shape != (texts, len(labels)):
        return None
    return logits, labels


def check_finite(logits: torch.Tensor, teacher_dir: Path, texts: list[str]) -> None:
    """A teacher whose logits are NaN or infinite gives the student nothing to learn: said as such
    (a NaN target surfaced as "training loss became nan; lower --lr", which no --lr fixes)."""
    bad = (~torch.isfinite(logits)).any(dim=-1)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise UsageError(f"teacher {teacher_dir} gives NaN or infinite logits for {int(bad.sum())} training texts "
                         f"(first: {texts[first][:60]!r}); check the teacher (python evaluate.py on it) or distil "
                         "from another")


def labelling_trainer(device: str = "cpu", devices: int | str = 1, strategy: str = "auto",
                      num_nodes: int = 1) -> L.Trainer:
    """A Trainer that only predicts (several processes, nodes or GPUs with ``devices``/``strategy``/
    ``num_nodes``), with the chunk-cache writer; batches are shared out by ``rank_batches``."""
    accelerator = "gpu" if torch.device(device).type == "cuda" else "cpu"
    return L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, num_nodes=num_nodes,
                     logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, use_distributed_sampler=False, callbacks=[ChunkCacheWriter()])


class _ChunkData(L.LightningDataModule):
    """One chunk's batches; the rank's share is taken when the Trainer asks, after it knows the ranks."""

    def __init__(self, tokenizer, encodings: list[dict], texts: list[str], batch_size: int) -> None:
        super().__init__()
        self.tokenizer, self.encodings, self.texts, self.batch_size = tokenizer, encodings, texts, batch_size

    def predict_dataloader(self) -> torch.utils.data.DataLoader:
        batches = rank_batches(self.texts, self.batch_size, self.trainer.global_rank, self.trainer.world_size)
        return torch.utils.data.DataLoader(_Batches(self.tokenizer, self.encodings, batches), batch_size=None)


def label_chunk(trainer: L.Trainer, module: TeacherLogitModule, tokenizer, encodings: list[dict], texts: list[str],
                path: Path, labels: list[str], batch_size: int = 64) -> torch.Tensor:
    """One chunk's logits through ``trainer.predict``, written to ``path`` (rank 0) and returned (every rank)."""
    writer = next(c for c in trainer.callbacks if isinstance(c, ChunkCacheWriter))
    writer.path, writer.size, writer.labels = path, len(texts), labels
    writer.logits = None
    with lightning_interruptions(trainer, "the teacher labelled the training texts",
                                 "the chunks it finished are cached: the same command goes on from there"):
        trainer.predict(module, datamodule=_ChunkData(tokenizer, encodings, texts, batch_size), return_predictions=False)
    return writer.logits


def cached_teacher_logits(teacher_dir: str | Path, texts: list[str], student_labels: list[str],
                          max_length: int, precision: str = "32-true", device: str = "cpu",
                          trainer: L.Trainer | None = None, encodings: dict | None = None,
                          batch_size: int = 64) -> tuple[torch.Tensor, Path]:
    """(logits in the student's label order, cache folder of this teacher, max length and precision).

    The texts are cached in chunks of CHUNK, each keyed by its texts, so a pass over a large
    transfer set that stops midway resumes at its last chunk, and a transfer set that is a
    prefix of another reuses its logits. Missing chunks are labelled by ``Trainer.predict``
    (``trainer``: one from ``labelling_trainer``, e.g. on several processes; default one
    process on ``device``). ``encodings``: a dict shared by teachers with one tokenizer, so each
    chunk is tokenised once for all of them."""
    teacher_dir = Path(teacher_dir)
    folder = cache_root() / "teacher_logits" / _key(teacher_fingerprint(teacher_dir), str(max_length),
                                                     *(("bf16",) if is_bf16(precision) else ()))
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    paths = [folder / f"{_key(chr(30).join(chunk))}.safetensors" for chunk in chunks]
    missing = sum(len(chunk) for chunk, path in zip(chunks, paths) if not path.is_file())
    loaded, parts, labels = None, [], None
    encodings = {} if encodings is None else encodings
    tokens = tokenizer_fingerprint(teacher_dir)
    with tqdm(total=missing, desc=f"teacher logits ({teacher_dir.parent.name or teacher_dir.name})", unit="text",
              disable=missing < CHUNK, mininterval=10) as progress:
        for chunk, path in zip(chunks, paths):
            cached = read_chunk(path, len(chunk)) if path.is_file() else None
            if cached is not None:
                logits, labels = cached
            else:
                if loaded is None:
                    tokenizer, model = load_logit_teacher(teacher_dir)
                    trainer = trainer or labelling_trainer(device)
                    loaded = tokenizer, TeacherLogitModule(model, precision)
                labels = config_label_names(loaded[1].model.config)
                key = (tokens, max_length, path.name)
                if key not in encodings:
                    encodings[key] = _encode(loaded[0], chunk, max_length)
                logits = label_chunk(trainer, loaded[1], loaded[0], encodings[key], chunk, path, labels, batch_size)
                progress.update(len(chunk))
            check_finite(logits, teacher_dir, chunk)
            parts.append(logits)
    if labels is None:
        raise UsageError("no texts to compute teacher logits for")
    return torch.cat(parts)[:, align_labels(labels, student_labels)], folder


def _encode(tokenizer, texts: list[str], max_length: int) -> list[dict]:
    """Each text's token ids (truncated, unpadded), for ``tokenizer.pad`` to batch."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    return [{name: encoded[name][i] for name in encoded.keys()} for i in range(len(texts))]


def ensemble_teacher_logits(teacher_dirs: list[Path], texts: list[str], student_labels: list[str],
                            max_length: int, precision: str = "32-true", device: str = "cpu") -> tuple[torch.Tensor, list[Path]]:
    """The mean of several teachers' logits (each cached apart), in the student's label order."""
    encodings: dict = {}  # teachers with one tokenizer tokenise each chunk once
    results = [cached_teacher_logits(d, texts, student_labels, max_length, precision, device, encodings=encodings)
               for d in teacher_dirs]
    return torch.stack([logits for logits, _ in results]).mean(0), [folder for _, folder in results]

"""Classify new text with any saved model: the Python API that predict.py (and a service) use.

    from tweetcls import Predictor
    predictor = Predictor.from_run("runs/<run>", backend="int8")
    predictor.predict(["what a day", "so angry right now"])

Backends: ``torch`` (fp32), ``bf16`` (fp32 weights, bf16 autocast), ``int8`` (torch dynamic int8), ``onnx`` and ``onnx-int8``
(ONNX Runtime; exported into the run directory on first use and kept). Texts are batched
by length (little padding) and returned in input order. Single-label probabilities are
temperature-calibrated when the run fitted a temperature; a prediction below the abstain
threshold (``min_confidence``, or the one ``abstain.json`` in the run holds) is ``uncertain``.
Empty texts get a row marked empty, never a shifted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from tweetcls.loader import LoadedRun, load_run
from compress.onnx_export import FP32_FILE, INT8_FILE, export_onnx, onnx_session, quantize_onnx, read_metadata
from tweetcls_core.backends import BACKENDS
from tweetcls_core.errors import UsageError
from tweetcls_core.precision import Bf16Autocast

ABSTAIN_FILE = "abstain.json"
UNCERTAIN = "uncertain"


@dataclass
class Predictor:
    forward: Callable[[dict], torch.Tensor]  # padded batch of token ids -> logits
    tokenizer: object
    label_names: list[str]
    multi_label: bool = False
    threshold: float | None = None  # multi-label decision threshold
    temperature: float = 1.0
    max_length: int = 128
    backend: str = "torch"
    batch_size: int = 64
    min_confidence: float | None = None  # single-label: below this, the answer is "uncertain"
    run_dir: Path | None = None  # where a chosen abstain threshold is kept
    info: dict = field(default_factory=dict)

    @classmethod
    def from_run(cls, target: str | Path, backend: str = "torch", batch_size: int = 64,
                 min_confidence: float | None = None) -> "Predictor":
        """A predictor for a run directory, adapter, int8 variant, ONNX folder/file or model folder."""
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if batch_size <= 0:
            raise UsageError(f"--batch-size must be > 0, got {batch_size}")
        onnx_file = _onnx_file(Path(target), backend)
        if onnx_file is not None:
            return _from_onnx_file(onnx_file, batch_size, min_confidence)
        run = load_run(target)
        forward = _torch_forward(run.model) if backend == "torch" else \
            _torch_forward(Bf16Autocast(run.model)) if backend == "bf16" else \
            _torch_forward(_int8_model(run)) if backend == "int8" else \
            _onnx_forward(_exported(run, backend == "onnx-int8"))
        predictor = cls(forward, run.tokenizer, run.label_names, run.multi_label, run.threshold, run.temperature,
                        run.max_length, backend, batch_size, min_confidence, run.run_dir,
                        {"source": str(target), "kind": run.kind})
        predictor.use_saved_abstain_threshold()
        return predictor

    def use_saved_abstain_threshold(self) -> None:
        """Abstain as the run's abstain.json says, unless a threshold was given."""
        saved = self.run_dir / ABSTAIN_FILE if self.run_dir else None
        if self.min_confidence is None and saved is not None and saved.is_file():
            chosen = json.loads(saved.read_text())
            self.min_confidence = chosen.get("threshold")
            self.info["abstain"] = chosen

    def logits(self, texts: list[str], progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """Logits in input order; batches of similar length (texts must be non-empty)."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = torch.empty(len(ids), len(self.label_names))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            batch = self.tokenizer.pad({k: [v[i] for i in chunk] for k, v in encoded.items()}, return_tensors="pt")
            out[chunk] = self.forward(dict(batch)).float()
            if progress:
                progress(len(chunk))
        return out

    def probabilities(self, texts: list[str], progress=None) -> torch.Tensor:
        logits = self.logits(texts, progress)
        if self.multi_label:
            return torch.sigmoid(logits)
        return torch.softmax(logits / self.temperature, dim=-1)

    def predict(self, texts: Iterable[str], top_k: int | None = None, progress=None) -> list[dict]:
        """One dict per text, in input order: label, probability, probabilities (all, or the top k)."""
        texts = list(texts)
        keep = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        probs = self.probabilities([texts[i] for i in keep], progress) if keep else torch.empty(0)
        results: list[dict] = [{"label": "", "probability": None, "probabilities": {}, "empty": True}
                               for _ in texts]
        for row, p in zip(keep, probs):
            results[row] = self._decide(p, top_k)
        return results

    def _decide(self, p: torch.Tensor, top_k: int | None) -> dict:
        ranked = torch.argsort(p, descending=True).tolist()
        shown = ranked[:top_k] if top_k else ranked
        out = {"probabilities": {self.label_names[i]: float(p[i]) for i in shown}, "empty": False}
        if self.multi_label:
            threshold = 0.5 if self.threshold is None else self.threshold
            labels = [self.label_names[i] for i in ranked if p[i] >= threshold]
            return {"label": ";".join(labels), "labels": labels, "probability": float(p[ranked[0]]), **out}
        best = ranked[0]
        label = self.label_names[best]
        if self.min_confidence is not None and float(p[best]) < self.min_confidence:
            label = UNCERTAIN
        return {"label": label, "probability": float(p[best]), **out}


def _torch_forward(model) -> Callable[[dict], torch.Tensor]:
    model.eval()

    @torch.inference_mode()
    def forward(batch: dict) -> torch.Tensor:
        return model(**batch).logits

    return forward


def _int8_model(run: LoadedRun):
    if run.kind == "int8":
        return run.model
    from compress.dynamic_int8 import quantize_int8

    return quantize_int8(run.model)


def _onnx_forward(path: Path) -> Callable[[dict], torch.Tensor]:
    session = onnx_session(path)
    names = [i.name for i in session.get_inputs()]

    def forward(batch: dict) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {n: batch[n].numpy() for n in names})[0])

    return forward


def _exported(run: LoadedRun, int8: bool) -> Path:
    """The run's ONNX export (made and kept on first use) and, if asked, its int8 variant."""
    folder = onnx_dir(run)
    if not (folder / FP32_FILE).is_file():
        try:
            export_onnx(run.model, run.tokenizer, folder, run.decision_rule())
        except PermissionError:
            raise UsageError(f"cannot write the ONNX export into {folder}; copy the model somewhere writable") from None
    if int8 and not (folder / INT8_FILE).is_file():
        quantize_onnx(folder)
    return folder / (INT8_FILE if int8 else FP32_FILE)


def onnx_dir(run: LoadedRun) -> Path:
    """Where a model's ONNX export lives: ``onnx/`` in its run directory, else beside its weights."""
    return (run.run_dir or run.path) / "onnx"


def _onnx_file(target: Path, backend: str) -> Path | None:
    """An ONNX file, or a folder holding an export (and no torch model), given directly."""
    if target.is_file() and target.suffix == ".onnx":
        return target
    if target.is_dir() and (target / FP32_FILE).is_file() and not (target / "config.json").is_file():
        return target / (INT8_FILE if backend == "onnx-int8" and (target / INT8_FILE).is_file() else FP32_FILE)
    return None


def _from_onnx_file(path: Path, batch_size: int, min_confidence: float | None) -> Predictor:
    from tweetcls_core.build import load_tokenizer

    meta = read_metadata(path.parent)
    run_dir = path.parent.parent if (path.parent.parent / "results.json").is_file() else None
    predictor = Predictor(_onnx_forward(path), load_tokenizer(path.parent), meta["label_names"], meta["multi_label"],
                          meta.get("threshold"), meta.get("temperature") or 1.0, meta.get("max_length", 128),
                          "onnx-int8" if path.name == INT8_FILE else "onnx", batch_size, min_confidence, run_dir,
                          {"source": str(path), "kind": "onnx"})
    predictor.use_saved_abstain_threshold()
    return predictor

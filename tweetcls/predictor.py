"""Classify new text with any saved model: the Python API that predict.py (and a service) use.

    from tweetcls import Predictor
    predictor = Predictor.from_run("runs/<run>", backend="int8")
    predictor.predict(["what a day", "so angry right now"])

Backends: ``torch`` (fp32), ``bf16`` (fp32 weights, bf16 autocast), ``int8`` (torch dynamic int8), ``onnx``,
``onnx-int8`` and ``onnx-int8-static`` (ONNX Runtime; exported into the run directory on first use and kept;
static int8 is calibrated on the run's training texts). Texts are batched
by length (little padding) and returned in input order. Single-label probabilities are
temperature-calibrated when the run fitted a temperature; a prediction below the abstain
threshold (``min_confidence``, or the one ``abstain.json`` in the run holds) is ``uncertain``.
Empty texts (nothing visible: whitespace, zero-width or control characters only, see
``tweetcls.core.blank_text``) get a row marked empty, never a shifted one. Texts are a ``str`` (one
text) or a list/tuple of ``str``; anything else is a TypeError. Logits and probabilities are numpy
arrays; an ONNX backend on an existing export imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from tweetcls.compress.onnx_files import FILE_OF_BACKEND, FP32_FILE, INT8_FILE, STATIC_FILE, onnx_session, read_metadata
from tweetcls.text_encoder import TextEncoder
from tweetcls.core.backends import BACKENDS
from tweetcls.core.blank_text import is_blank
from tweetcls.core.errors import ParameterError, UsageError
from tweetcls.core.options import path_argument

if TYPE_CHECKING:
    from tweetcls.loader import LoadedRun

ABSTAIN_FILE = "abstain.json"
UNCERTAIN = "uncertain"


@dataclass
class Predictor:
    forward: Callable[[dict[str, np.ndarray]], np.ndarray]  # padded batch of token ids -> logits
    encoder: TextEncoder
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

    def __post_init__(self) -> None:
        check_min_confidence(self.min_confidence)

    @classmethod
    def from_run(cls, target: str | Path, backend: str = "torch", batch_size: int = 64,
                 min_confidence: float | None = None, threads: int | None = None) -> "Predictor":
        """A predictor for a run directory, adapter, int8 variant, ONNX folder/file or model folder.
        ``threads``: intra-op threads (None: the runtime's default)."""
        path_argument(target, "target")
        if backend not in BACKENDS:
            raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size <= 0:
            raise UsageError(f"batch_size must be an int > 0, got {batch_size!r}")
        # torch said "set_num_threads expects an int, but got str"; 0 and -1 were ignored or a RuntimeError
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, Integral) or threads < 1):
            raise UsageError(f"threads must be an int >= 1 (or None for the runtime's default), got {threads!r}")
        cores = os.cpu_count() or 1
        if threads is not None and threads > cores:  # torch.set_num_threads(10**6): every later op of the process
            # failed with "can't start new thread" (predict.py's --threads had this check, the library not)
            raise ParameterError("threads", f"is {threads}: this machine has {cores} CPU cores; use at most {cores}")
        check_min_confidence(min_confidence)
        onnx_file = _onnx_file(Path(target), backend)
        if onnx_file is not None:
            return _from_onnx_file(onnx_file, batch_size, min_confidence, threads)
        import torch

        from tweetcls.loader import load_run
        from tweetcls.core.precision import Bf16Autocast

        if threads:
            torch.set_num_threads(threads)
        run = load_run(target)
        names = [n for n in run.tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
        forward = _torch_forward(run.model, names) if backend == "torch" else \
            _torch_forward(Bf16Autocast(run.model), names) if backend == "bf16" else \
            _torch_forward(_int8_model(run), names) if backend == "int8" else \
            _onnx_forward(_exported(run, backend), threads or torch.get_num_threads())
        predictor = cls(forward, TextEncoder.from_hf(run.tokenizer, run.max_length), run.label_names,
                        run.multi_label, run.threshold, run.temperature, run.max_length, backend, batch_size,
                        min_confidence, run.run_dir, {"source": str(target), "kind": run.kind})
        predictor.use_saved_abstain_threshold()
        return predictor

    def use_saved_abstain_threshold(self) -> None:
        """Abstain as the run's abstain.json says, unless a threshold was given."""
        saved = self.run_dir / ABSTAIN_FILE if self.run_dir else None
        if self.min_confidence is None and saved is not None and saved.is_file():
            try:
                chosen = json.loads(saved.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                chosen = err
            if not isinstance(chosen, dict):  # a damaged file: no silent guess at a threshold
                why = chosen if isinstance(chosen, Exception) else "not a JSON object"
                raise UsageError(f"{saved} is not a valid abstain file ({why}); delete it, or choose again "
                                 "with predict.py --abstain-precision")
            self.min_confidence = chosen.get("threshold")
            self.info["abstain"] = chosen

    def logits(self, texts: str | list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Logits (texts x labels, float32) in input order; batches of similar length (texts must be non-empty)."""
        encodings = self.encoder.encode(as_texts(texts))
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(encodings), len(self.label_names)), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            out[chunk] = self.forward(self.encoder.pad([encodings[i] for i in chunk]))
            if progress:
                progress(len(chunk))
        return out

    def probabilities(self, texts: str | list[str], progress=None) -> np.ndarray:
        return self.probabilities_from(self.logits(texts, progress))

    def probabilities_from(self, logits: np.ndarray) -> np.ndarray:
        """Sigmoid (multi-label) or the temperature-calibrated softmax of logits."""
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        scaled = logits / self.temperature
        exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    def predict(self, texts: str | list[str] | tuple[str, ...], top_k: int | None = None, progress=None) -> list[dict]:
        """One dict per text, in input order: label, probability, probabilities (all, or the top ``top_k``).
        A bare ``str`` is one text (one dict back)."""
        texts = as_texts(texts)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, Integral) or top_k < 1):
            raise UsageError(f"top_k must be an int >= 1 (or None for every label), got {top_k!r}")
        check_min_confidence(self.min_confidence)
        keep = [i for i, t in enumerate(texts) if not is_blank(t)]
        probs = self.probabilities([texts[i] for i in keep], progress) if keep else []
        results: list[dict] = [{"label": "", "probability": None, "probabilities": {}, "empty": True}
                               for _ in texts]
        for row, p in zip(keep, probs):
            results[row] = self._decide(p, top_k)
        return results

    def _decide(self, p: np.ndarray, top_k: int | None) -> dict:
        ranked = np.argsort(-p, kind="stable").tolist()
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


def as_texts(texts) -> list[str]:
    """``texts`` as a list of str: a bare str is one text (not its characters); a list or tuple must
    hold only str. Anything else (a dict, numbers, None, a generator) is a TypeError naming it."""
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a str or a list/tuple of str, got {type(texts).__name__}; "
                        "pass e.g. list(...) of strings")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__} ({text!r:.40}), not str; every text must be a "
                            "str (convert numbers with str(), drop missing ones)")
    return list(texts)


def check_min_confidence(value) -> None:
    """min_confidence is a probability: None, or a number in [0, 1]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 1:
        raise UsageError(f"min_confidence must be a number in [0, 1] (or None), got {value!r}")


def _torch_forward(model, names: list[str]) -> Callable[[dict], np.ndarray]:
    import torch

    model.eval()

    @torch.inference_mode()
    def forward(batch: dict) -> np.ndarray:
        return model(**{n: torch.from_numpy(batch[n]) for n in names}).logits.float().numpy()

    return forward


def _int8_model(run: "LoadedRun"):
    if run.kind == "int8":
        return run.model
    from tweetcls.compress.dynamic_int8 import quantize_int8

    return quantize_int8(run.model)


def _onnx_forward(path: Path, threads: int | None) -> Callable[[dict], np.ndarray]:
    session = onnx_session(path, threads)
    names = [i.name for i in session.get_inputs()]

    def forward(batch: dict) -> np.ndarray:
        return session.run(None, {n: batch[n] for n in names})[0]

    return forward


def _exported(run: "LoadedRun", backend: str) -> Path:
    """The run's ONNX export (made and kept on first use) and, if asked, its int8 variant."""
    folder = onnx_dir(run)
    if backend == "onnx-int8-static" and not (folder / STATIC_FILE).is_file() and not run.results:
        raise UsageError(f"backend onnx-int8-static calibrates on the training texts of a run; {run.path} is no "
                         "run directory (give the run, or use onnx-int8)")
    from tweetcls.compress.onnx_export import export_onnx, quantize_onnx

    if not (folder / FP32_FILE).is_file():
        try:
            export_onnx(run.model, run.tokenizer, folder, run.decision_rule())
        except PermissionError:
            raise UsageError(f"cannot write the ONNX export into {folder}; copy the model somewhere writable") from None
    if backend == "onnx-int8" and not (folder / INT8_FILE).is_file():
        quantize_onnx(folder)
    if backend == "onnx-int8-static" and not (folder / STATIC_FILE).is_file():
        from tweetcls.compress.onnx_static import calibration_sample, quantize_onnx_static
        from tweetcls.loader import load_run_data

        train = list(load_run_data(run.results).splits["train"]["text"])
        quantize_onnx_static(folder, calibration_sample(train), run.tokenizer)
    return folder / FILE_OF_BACKEND[backend]


def onnx_dir(run: "LoadedRun") -> Path:
    """Where a model's ONNX export lives: ``onnx/`` in its run directory, else beside its weights."""
    return (run.run_dir or run.path) / "onnx"


def _onnx_file(target: Path, backend: str) -> Path | None:
    """An ONNX file, or a folder holding an export (and no torch model), given directly; or a run
    directory whose export for this backend exists (then no torch model is loaded)."""
    if target.is_file() and target.suffix == ".onnx":
        return target
    exported = target / "onnx" / FILE_OF_BACKEND.get(backend, "")
    if backend.startswith("onnx") and (target / "results.json").is_file() and exported.is_file():
        return exported
    if target.is_dir() and (target / FP32_FILE).is_file() and not (target / "config.json").is_file():
        if backend == "onnx-int8-static" and not (target / STATIC_FILE).is_file():
            raise UsageError(f"{target} has no {STATIC_FILE}; make it from the run: "
                             "python export.py RUN --format onnx-int8-static")
        wanted = {"onnx-int8": INT8_FILE, "onnx-int8-static": STATIC_FILE}.get(backend, FP32_FILE)
        return target / (wanted if (target / wanted).is_file() else FP32_FILE)
    return None


def _from_onnx_file(path: Path, batch_size: int, min_confidence: float | None, threads: int | None) -> Predictor:
    meta = read_metadata(path.parent)
    run_dir = path.parent.parent if (path.parent.parent / "results.json").is_file() else None
    encoder = TextEncoder.from_folder(path.parent, meta.get("max_length", 128))
    predictor = Predictor(_onnx_forward(path, threads), encoder, meta["label_names"], meta["multi_label"],
                          meta.get("threshold"), meta.get("temperature") or 1.0, meta.get("max_length", 128),
                          {INT8_FILE: "onnx-int8", STATIC_FILE: "onnx-int8-static"}.get(path.name, "onnx"), batch_size,
                          min_confidence, run_dir,
                          {"source": str(path), "kind": "onnx"})
    predictor.use_saved_abstain_threshold()
    return predictor

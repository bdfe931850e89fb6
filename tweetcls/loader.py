"""One loader for every form a trained classifier is saved in.

- a run directory of train.py (``results.json`` + its merged ``model/``);
- a LoRA ``adapter/`` (of a run, or any folder ``lora.save_adapter`` wrote), put on its base model;
- an int8 variant written by ``evaluate.py --save-variants`` (``compress.save_int8``);
- a plain Hugging Face classifier folder, a hub id, or a short name of models/resolve's table.

Each comes back as a ``LoadedRun``: the model in eval mode with the pooling it was trained
with, its tokenizer, label names, whether it is multi-label, its decision threshold, and
the run's results where there is a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from transformers import AutoConfig, PreTrainedTokenizerBase

from tweetcls.compress.dynamic_int8 import QUANTIZATION_CONFIG, QUANTIZED_WEIGHTS, load_int8
from tweetcls.compress.int8_base import quantize_frozen_linears
from tweetcls.lora.adapter_io import ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapter
from tweetcls.lora.inject import mark_only_lora_as_trainable, merge_lora
from tweetcls.core.build import load_classifier, load_tokenizer
from tweetcls.core.errors import UsageError
from tweetcls.core.options import path_argument
from tweetcls.core.resolve import resolve_model
from tweetcls.core.results_file import RESULTS_FILE, read_results
from tweetcls.core.surgery import config_label_names

MULTI_LABEL = "multi_label_classification"


@dataclass
class LoadedRun:
    """A trained classifier and what a consumer needs to use it as it was trained."""

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    label_names: list[str]
    multi_label: bool
    threshold: float | None  # multi-label decision threshold (tuned on val when the run did); None: argmax
    pooling: str
    temperature: float  # softmax temperature fitted on val (1.0 where none was fitted)
    kind: str  # "run", "adapter", "int8" or "model"
    path: Path  # the folder the weights came from
    results: dict = field(default_factory=dict)  # the run's results.json, where there is a run

    @property
    def max_length(self) -> int:
        """The --max-length the run trained with (128 where unknown)."""
        return int(self.results.get("config", {}).get("max_length", 128))

    @property
    def run_dir(self) -> Path | None:
        """The run directory the model came from (None for a folder that is no run's model/)."""
        return self.path.parent if self.kind == "run" else None

    def decision_rule(self) -> dict:
        """What an export carries beside the weights so its consumer decides as this model does."""
        return {"label_names": self.label_names, "multi_label": self.multi_label, "threshold": self.threshold,
                "temperature": self.temperature, "pooling": self.pooling, "max_length": self.max_length}


def load_run_data(results: dict, data_dir: str | None = None):
    """The labelled data a run was trained on, read as train.py read it (columns, encoding, data dir)."""
    from tweetcls.datamodules.sources import load_labelled_data

    config = results.get("config", {})
    return load_labelled_data(results["dataset"], data_dir or config.get("data_dir"), config.get("text_column", "text"),
                              config.get("label_column", "label"), config.get("encoding", "utf-8"),
                              config.get("val_file"), config.get("test_file"))


def load_run(target: str | Path, merged: bool = True) -> LoadedRun:
    """Load ``target`` (see the module docstring for the forms); a wrong folder is a UsageError.

    ``merged=False`` gives a LoRA run as training scored it: its adapter on the base model, kept
    apart (W x + s B A x), where it can be loaded. In fp32 that equals the merged model/ to the
    last bits or so; under bf16 autocast the merged weights round differently (issue 46: test
    0.7296 from model/ against 0.7229 in results.json), so evaluate.py scores this form."""
    path = Path(path_argument(target, "target"))
    if path.is_dir():
        if (path / RESULTS_FILE).is_file():
            return _from_run_dir(path, merged)
        if (path / ADAPTER_CONFIG).is_file() and (path / ADAPTER_WEIGHTS).is_file():
            return _from_adapter(path)
        if (path / QUANTIZATION_CONFIG).is_file() and (path / QUANTIZED_WEIGHTS).is_file():
            return _from_int8(path)
        if not (path / "config.json").is_file():
            if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
                # a run still training, or stopped, was described as holding no run at all
                raise UsageError(f"{path} is a run that has not finished (no {RESULTS_FILE} yet): wait for its training "
                                 f"to end, or if it was stopped, finish it with: python train.py --resume {path}")
            raise UsageError(f"{path} holds no run ({RESULTS_FILE}), adapter ({ADAPTER_CONFIG}), int8 variant "
                             f"({QUANTIZATION_CONFIG}) or saved model (config.json)")
    elif path.is_file() and path.suffix != ".onnx":  # a checkpoint was "not found", though it is there
        raise UsageError(f"{path} is a file; pass the run directory it belongs to (a .ckpt: the folder above "
                         "checkpoints/), a model folder or a model name")
    return _from_model_dir(resolve_model(str(target)))


def _from_run_dir(run_dir: Path, merged: bool = True) -> LoadedRun:
    results = read_results(run_dir)
    if not isinstance(results, dict):
        raise UsageError(f"{run_dir / RESULTS_FILE} is not a JSON object; it was not written by train.py")
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        raise UsageError(f"{run_dir} has no saved model in {model_dir}; the run did not finish")
    adapter = run_dir / "adapter"
    loaded = None
    if not merged and (adapter / ADAPTER_CONFIG).is_file() and (adapter / ADAPTER_WEIGHTS).is_file():
        try:
            loaded = _from_adapter(adapter, merge=False)
        except UsageError:  # its base model moved or is gone: the merged model is the form left
            loaded = None
    loaded = loaded or _from_model_dir(model_dir)
    loaded.kind, loaded.results = "run", results
    if results.get("multi_label") and results.get("threshold") is not None:
        loaded.threshold = float(results["threshold"])
    return loaded


def _from_model_dir(model_dir: Path) -> LoadedRun:
    config = _config(model_dir)
    multi_label = config.problem_type == MULTI_LABEL
    labels = config_label_names(config)
    model = load_classifier(model_dir, labels, multi_label, trained=True)
    return LoadedRun(model.eval(), load_tokenizer(model_dir), labels, multi_label, _threshold(config),
                     model.config.pooling, _temperature(config), "model", model_dir)


def _from_int8(folder: Path) -> LoadedRun:
    config = _config(folder)
    try:
        model = load_int8(folder)
    except (RuntimeError, ValueError) as err:  # a tensor shaped unlike config.json says (an edited label count)
        raise UsageError(f"refusing {folder}: its weights do not fit its config.json ({str(err).splitlines()[0][:200]}); "
                         "restore the config.json saved with them") from None
    multi_label = config.problem_type == MULTI_LABEL
    _check_head_rows(model, len(config_label_names(config)), folder)
    return LoadedRun(model.eval(), load_tokenizer(folder), config_label_names(config), multi_label,
                     _threshold(config), model.config.pooling, _temperature(config), "int8", folder)


def _from_adapter(folder: Path, merge: bool = True) -> LoadedRun:
    """The adapter on a fresh copy of its base model, then merged (as train.py merges it) unless
    ``merge`` is False (then the model is the one training scored: LoRA layers, an int8 base for QLoRA)."""
    saved = json.loads((folder / ADAPTER_CONFIG).read_text())
    run = read_results(folder.parent) if (folder.parent / RESULTS_FILE).is_file() else {}
    labels = saved.get("label_names") or run.get("label_names")
    base = saved.get("base_model_path") or run.get("model_path") or saved.get("base_model")
    if not labels or not base:
        raise UsageError(f"{folder / ADAPTER_CONFIG} names no label set or base model, and {folder.parent} is not "
                         "its run; load the run directory instead")
    multi_label = bool(saved.get("multi_label", run.get("multi_label", False)))
    pooling = saved.get("pooling") or run.get("pooling") or "auto"
    base_dir = resolve_model(str(base))
    model = load_classifier(base_dir, labels, multi_label, pooling)
    if saved.get("method") == "qlora":
        # the factors were trained on an int8 copy of the base: rebuild that copy, as training had it
        from tweetcls.lora.inject import inject_lora

        inject_lora(model, saved["target_modules"], r=saved["r"], alpha=saved["alpha"],
                    dropout=saved.get("dropout", 0.0), use_rslora=saved.get("use_rslora", False))
        mark_only_lora_as_trainable(model)
        quantize_frozen_linears(model)
    load_adapter(model, folder)
    if merge:
        merge_lora(model)
    if merge and saved.get("method") == "qlora":
        from tweetcls.compress.int8_base import dequantize_linears

        dequantize_linears(model)
    threshold = saved.get("threshold", run.get("threshold") if multi_label else None)
    temperature = float((run.get("calibration") or {}).get("temperature", saved.get("temperature") or 1.0))
    return LoadedRun(model.eval(), load_tokenizer(base_dir), labels, multi_label, threshold, model.config.pooling,
                     temperature, "adapter", folder, run)


def _check_head_rows(model: nn.Module, num_labels: int, folder: Path) -> None:
    """An int8 head packs whatever rows it was saved with: refuse one that disagrees with config.json's labels."""
    for attribute in ("classifier", "score"):
        head = getattr(model, attribute, None)
        weight = getattr(getattr(head, "out_proj", head), "weight", None)
        weight = weight() if callable(weight) else weight
        if weight is not None and weight.shape[0] != num_labels:
            raise UsageError(f"refusing {folder}: its saved head has {weight.shape[0]} outputs, config.json names "
                             f"{num_labels} labels; restore the config.json saved with these weights")


def _config(folder: Path):
    try:
        return AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read the model config in {folder}: {str(err).splitlines()[0]}") from None


def _temperature(config) -> float:
    return float(getattr(config, "calibration_temperature", None) or 1.0)


def _threshold(config) -> float | None:
    value = getattr(config, "multi_label_threshold", None)
    return float(value) if value is not None else None

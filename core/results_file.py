"""``results.json``: what a finished run records, in one schema, with one writer and one reader.

train.py and pretrain.py write it last of a run's files (its presence is what "finished" means to
--resume); evaluate, predict, export, serve, the comparison table, the model card, the
experiments and the benchmarks all read it through ``read_results``. ``RunResults`` is the
schema: every key, its type, and which command writes it. ``schema_version`` 2 is the first
version with the field; a file without it (written before) is version 1, the same keys, and is
read as it is. A file from a newer version than this code knows is refused with the fix.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import TypedDict

from tweetcls.core.errors import UsageError

RESULTS_FILE = "results.json"
SCHEMA_VERSION = 2


class RunResults(TypedDict, total=False):
    """One run's record. Every run: the first block; classifiers (train.py) and masked-LM
    pretraining (pretrain.py) each add their own."""

    schema_version: int
    method: str  # full, lora, qlora, teacher, distill, distill-lora; mlm or mlm-lora (pretrain.py)
    model: str  # as given: a short name, a hub id or a folder
    model_path: str  # where the weights were read from
    dataset: str
    seed: int
    run_dir: str
    precision: str  # Lightning's: 32-true, bf16-mixed, ...
    params_total: int
    params_trainable: int
    fit_seconds: float
    train_step_seconds: float  # the fit's training steps alone (validation and checkpoints left out)
    train_samples_per_sec: float | None
    epochs: int
    steps: int
    lora: dict | None  # targets, r, alpha, dropout
    config: dict  # every option the command ran with
    environment: dict  # library versions, machine, git commit
    # train.py
    task_metric: str  # the dataset's official metric, e.g. macro_f1, f1[irony]
    label_names: list
    multi_label: bool
    pooling: str  # cls or mean
    trainable_pct: float
    best_checkpoint: str | None
    head_bias: str | None  # multi-label: "prior" (bias at the training priors) or "zero"
    threshold: float | None  # multi-label decision threshold, tuned on validation
    threshold_tuning: dict | None
    calibration: dict | None  # temperature fitted on validation, NLL/ECE before and after
    val: dict  # split metrics: loss, accuracy, macro_f1, the task metric, ...
    test: dict | None  # None with --no-test
    eval_examples: dict  # rows scored per held-out split ("validation", "test"): fewer under --max-eval-samples
    distill: dict | None
    inference: dict  # CPU latency: median and spread, batch, length, threads, the machine's load
    wall_seconds: float
    # pretrain.py
    corpus: dict
    train_texts: int
    heldout_texts: int
    heldout_mlm_loss_before: float | None
    heldout_mlm_loss_per_epoch: list
    mlm_head_created: bool


REQUIRED = ("method", "model", "dataset", "seed", "run_dir")  # what every writer records
CLASSIFIER_REQUIRED = ("label_names", "multi_label", "task_metric", "val")  # and every train.py run


def _runtime_types(annotation) -> tuple[type, ...]:
    """``float | None`` -> (float, int, NoneType): the isinstance check of one field (an int is a float)."""
    parts = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    kinds = tuple(typing.get_origin(p) or p for p in parts)
    return kinds + ((int,) if float in kinds else ())


FIELD_TYPES = {name: _runtime_types(kind) for name, kind in typing.get_type_hints(RunResults).items()}


def schema_problems(results: dict, required: tuple[str, ...] = ()) -> list[str]:
    """What makes ``results`` not a RunResults: missing ``required`` keys, a known key of the
    wrong type (keys the schema does not name are left alone: a newer minor writer's extras)."""
    problems = [f"{key} is missing" for key in required if key not in results]
    for key, value in results.items():
        kinds = FIELD_TYPES.get(key)
        if kinds and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            problems.append(f"{key} is {type(value).__name__}, not {' or '.join(k.__name__ for k in kinds)}")
    return problems


def write_results(run_dir: str | Path, results: dict) -> None:
    """Stamp the schema version, check the record against the schema, write it atomically."""
    from tweetcls.core.runs import write_json

    results["schema_version"] = SCHEMA_VERSION
    required = REQUIRED + (CLASSIFIER_REQUIRED if not str(results.get("method", "")).startswith("mlm") else ())
    problems = schema_problems(json.loads(json.dumps(results, default=str)), required)
    if problems:  # a bug in a writer, not the user's input: fail loudly before the run is called finished
        raise ValueError(f"results for {run_dir} break the results.json schema: {'; '.join(problems)}")
    write_json(Path(run_dir) / RESULTS_FILE, results)


def read_results(run_dir: str | Path) -> RunResults:
    """The run's record, checked against the schema; a file that is not one is a UsageError naming it."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} holds no run ({RESULTS_FILE} missing); pass a directory written by train.py")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is corrupt ({err.msg} at line {err.lineno})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    if not isinstance(results, dict):
        raise UsageError(f"{path} is not a JSON object; it was not written by train.py")
    version = results.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"{path}: schema_version {version!r} is not a version; it was not written by train.py")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{path} is results.json version {version}; this tweetcls reads up to "
                         f"{SCHEMA_VERSION}: upgrade tweetcls to read it")
    problems = schema_problems(results, ("method",))
    if problems:
        raise UsageError(f"{path} is not a results.json train.py wrote: {'; '.join(problems[:3])}")
    return results

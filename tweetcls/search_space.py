"""A hyperparameter search space, read from YAML and checked against train.py's options.

    lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    lora_r: {type: categorical, choices: [4, 8, 16]}
    max_epochs: {type: int, low: 2, high: 5}

Keys are train.py options (as in a --config file); each becomes an Optuna distribution. Its
bounds and choices must lie in the option's declared domain (core/options.py): a
search never starts trials that train.py would refuse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from tweetcls.core.errors import UsageError
from tweetcls.core.options import Number, check_value, yaml_mapping

TYPES = ("float", "int", "categorical")
SPEC_KEYS = {"float": ("type", "low", "high", "log"), "int": ("type", "low", "high", "log"),
             "categorical": ("type", "choices")}  # what ``suggest`` reads; anything else would be ignored


def load_space(path: str | Path, options: dict[str, argparse.Action]) -> dict[str, dict]:
    """The space in ``path`` for the options of ``options`` (dest -> argparse action); an unknown
    option or type, an empty range, or a value outside the option's domain is a UsageError."""
    try:
        space = yaml_mapping(Path(path).read_text(encoding="utf-8"), f"search space {path}")
    except FileNotFoundError:
        raise UsageError(f"search space {path} not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"search space {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(space, dict) or not space:
        raise UsageError(f"search space {path} must map option names to ranges, e.g. lr: {{type: float, low: 1e-4, "
                         "high: 1e-3, log: true}")
    checked = {}
    for raw_name, spec in space.items():
        name = str(raw_name).replace("-", "_")
        if name not in options:
            raise UsageError(f"search space {path}: {raw_name!r} is not a train.py option; see python train.py --help")
        if name in ("method", "dataset", "output_dir", "run_name", "resume", "config", "test"):
            raise UsageError(f"search space {path}: {raw_name!r} is fixed for a study; pass it to tune.py instead")
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise UsageError(f"search space {path}: {raw_name} needs type: {' | '.join(TYPES)}")
        unknown = sorted(set(map(str, spec)) - set(SPEC_KEYS[spec["type"]]))
        if unknown:  # a typo such as "lgo: true" searched a log range linearly without a word; "step" was dropped
            raise UsageError(f"search space {path}: {raw_name} ({spec['type']}) does not take {', '.join(unknown)}; "
                             f"its keys are {', '.join(SPEC_KEYS[spec['type']])}")
        if spec["type"] == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise UsageError(f"search space {path}: {raw_name} needs a non-empty list of choices")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or isinstance(low, bool):
                raise UsageError(f"search space {path}: {raw_name} needs numbers low and high")
            if not low < high:
                raise UsageError(f"search space {path}: {raw_name} has an empty range (low {low}, high {high})")
            if spec.get("log") and low <= 0:
                raise UsageError(f"search space {path}: {raw_name} is log-scaled, so low must be > 0 (got {low})")
        within_domain(options[name], spec, f"search space {path}")
        checked[name] = spec
    return checked


def within_domain(action: argparse.Action, spec: dict, where: str) -> None:
    """Every value the spec can draw is one the option accepts: its ends (a range) or each choice."""
    domain = action.type
    if spec["type"] == "int" and isinstance(domain, Number) and domain.kind is float:
        pass  # integers are numbers
    elif spec["type"] == "float" and isinstance(domain, Number) and domain.kind is int:
        raise UsageError(f"{where}: {action.dest} takes integers; use type: int")
    elif spec["type"] != "categorical" and not isinstance(domain, Number):
        raise UsageError(f"{where}: {action.dest} is not a number option; use type: categorical")
    values = spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
    for value in values:
        if spec["type"] == "int" and not float(value).is_integer():
            raise UsageError(f"{where}: {action.dest} is type int, but {value!r} is not an integer")
        if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise UsageError(f"{where}: {action.dest} must be true or false, got {value!r}")
            continue
        checked = check_value(action, value, where)
        if action.choices is not None and checked not in action.choices:
            raise UsageError(f"{where}: {action.dest} must be one of {', '.join(map(str, action.choices))}, "
                             f"got {value!r}")


def suggest(trial, space: dict[str, dict]) -> dict:
    """One point of the space, drawn by the trial's sampler."""
    values = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            values[name] = trial.suggest_categorical(name, spec["choices"])
    return values

"""Every option of every command, fuzzed from its own declared domain (issue 37).

For each option the test draws values outside what the option declares it accepts (numbers
below, above or excluded from its range, NaN, inf, non-numbers, empty or control-character
text, missing paths, files for folders and folders for files, unknown choices) and checks
that the command's parsing layer refuses it with one UsageError line naming the option,
before anything loads. A first test makes sure no option escapes: each one must declare a
domain, choices or be a flag, so removing any validator turns this file red. The same
values written into --config YAML are refused the same way. In-process and on the parser
only, so it runs in seconds; tests/test_bad_input.py has the end-to-end subprocess cases.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tweetcls.commands import evaluate
from tweetcls.commands import export
from tweetcls.commands import predict
from tweetcls.commands import pretrain
from tweetcls.commands import serve
from tweetcls.training import options as train_options
from tweetcls.commands import tune
from conftest import REPO
from tweetcls.core.errors import UsageError
from tweetcls.core.options import INT_MAX, Encoding, Number, PathTo, Text, declared, undeclared

# command -> (its parser, the parsing layer a command runs before any model or data loads, a valid argv)
COMMANDS = {
    "train.py": (train_options.build_parser, train_options.parse_args, []),
    "pretrain.py": (pretrain.build_parser, pretrain.parse_args, []),
    "evaluate.py": (evaluate.build_parser, evaluate.parse_args, ["runs/x"]),
    "predict.py": (predict.build_parser, predict.parse_args, ["runs/x"]),
    "serve.py": (serve.build_parser, serve.parse_args, ["runs/x"]),
    "tune.py": (tune.build_parser, tune.parse, ["--trials", "1"]),
    "export.py": (export.build_parser, export.parse_args, ["runs/x", "--format", "onnx"]),
}
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,  # the same draws on every run
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """A file, a folder and a missing path, for the path options."""
    root = tmp_path_factory.mktemp("places")
    (root / "a-file.txt").write_text("x")
    (root / "a-folder").mkdir()
    return {"file": str(root / "a-file.txt"), "dir": str(root / "a-folder"), "missing": str(root / "no" / "such")}


def options() -> list[tuple[str, argparse.Action]]:
    """(command, action) for every option that takes a value (flags take none; a free text takes any)."""
    return [(command, action) for command, (build, _, _) in COMMANDS.items() for action in declared(build())
            if action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction)
            and not (isinstance(action.type, Text) and action.type.free)]


def option_id(pair: tuple[str, argparse.Action]) -> str:
    command, action = pair
    return f"{command}:{action.option_strings[-1] if action.option_strings else action.dest}"


def outside(action: argparse.Action, places: dict[str, str]) -> st.SearchStrategy[str]:
    """Text for ``action`` that its declared domain refuses."""
    domain = action.type
    if action.choices is not None:
        return st.text(min_size=1).filter(lambda t: t not in action.choices and not t.startswith("-"))
    if isinstance(domain, Number):
        return numbers_outside(domain)
    if isinstance(domain, PathTo):
        wrong = {"file": ["dir", "missing"], "dir": ["file", "missing"], "new-dir": ["file"], "output": ["dir"]}
        return st.sampled_from([places[k] for k in wrong[domain.kind]]) | bad_text()
    if isinstance(domain, Encoding):
        return st.sampled_from(["utf-9", "no-such-codec", "latin-2000"]) | bad_text()
    if isinstance(domain, Text):
        return bad_text()
    raise AssertionError(f"{action.dest}: no strategy for {domain!r}")


def bad_text() -> st.SearchStrategy[str]:
    control = st.text(min_size=0, max_size=8).flatmap(
        lambda t: st.sampled_from(["\x00", "\x01", "\n", "\t", "\x1b"]).map(lambda c: t + c))
    return st.sampled_from(["", " ", "   "]) | control


def numbers_outside(domain: Number) -> st.SearchStrategy[str]:
    kinds = [st.sampled_from(["nan", "inf", "-inf", "NaN", "", "abc", "1e", "0x10", "true", "1,5"])]
    if domain.kind is int:
        kinds.append(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
                     .filter(lambda x: not x.is_integer()).map(repr))
        if domain.low is not None:
            top = math.floor(domain.low) - (0 if domain.low_open else 1)
            kinds.append(st.integers(max_value=top).map(str))
        kinds.append(st.integers(min_value=int(domain.high if domain.high is not None else INT_MAX) + 1).map(str))
    else:
        if domain.low is not None:
            kinds.append(st.floats(max_value=domain.low, exclude_max=not domain.low_open, allow_nan=False,
                                   allow_infinity=False).map(repr))
        if domain.high is not None:
            kinds.append(st.floats(min_value=domain.high, exclude_min=not domain.high_open, allow_nan=False,
                                   allow_infinity=False).map(repr))
    if domain.excluded:
        kinds.append(st.sampled_from([str(x) for x in domain.excluded]))
    return st.one_of(kinds)


def argv_with(command: str, action: argparse.Action, value: str) -> list[str]:
    valid = list(COMMANDS[command][2])
    if action.option_strings:
        return [*valid, f"{action.option_strings[-1]}={value}"]
    position = [a.dest for a in declared(COMMANDS[command][0]()) if not a.option_strings].index(action.dest)
    positionals = [v for v in valid if not v.startswith("-")]
    flags = valid[len(positionals):]
    return [*positionals[:position], value, *positionals[position + 1:], *flags]


def test_every_option_declares_what_it_accepts():
    """No option takes anything at all: each has a domain (core/options.py), choices, or is a flag."""
    loose = {command: undeclared(build()) for command, (build, _, _) in COMMANDS.items()}
    assert {c: names for c, names in loose.items() if names} == {}


@pytest.mark.parametrize("pair", options(), ids=option_id)
def test_a_value_outside_the_domain_is_one_line_naming_the_option(pair, places):
    command, action = pair
    parse = COMMANDS[command][1]
    name = action.option_strings[-1] if action.option_strings else action.dest

    @FUZZ
    @given(value=outside(action, places))
    def refused(value: str) -> None:
        if not action.option_strings and value.startswith("-"):
            return  # a positional cannot start with "-": argparse reads it as a flag
        with pytest.raises(UsageError) as caught:
            parse(argv_with(command, action, value))
        message = str(caught.value)
        assert "\n" not in message and "Traceback" not in message
        assert name in message or (action.metavar and action.metavar in message), message

    refused()


YAML_COMMANDS = ("train.py", "pretrain.py")  # the commands with --config (and tune.py's best.yaml, read by train.py)


@pytest.mark.parametrize("pair", [p for p in options() if p[0] in YAML_COMMANDS and p[1].option_strings
                                  and p[1].dest != "config"], ids=option_id)
def test_the_same_values_from_a_config_file_are_refused(pair, places, tmp_path):
    command, action = pair
    parse = COMMANDS[command][1]
    config = tmp_path / "config.yaml"

    @FUZZ
    @given(value=outside(action, places))
    def refused(value: str) -> None:
        loaded = value  # the text as a YAML string; or the number YAML reads where it reads the same number
        try:
            number = yaml.safe_load(value)
        except yaml.YAMLError:
            number = None
        if isinstance(action.type, Number) and isinstance(number, (int, float)) and not isinstance(number, bool) \
                and repr(number) == value.strip():
            loaded = number
        if loaded is None or isinstance(loaded, (dict, list)):
            return  # YAML's null means "not given"; mappings and lists have their own tested message
        config.write_text(yaml.safe_dump({action.dest: loaded}))
        with pytest.raises(UsageError) as caught:
            parse(["--config", str(config)])
        message = str(caught.value)
        assert "\n" not in message and f"config file {config}" in message and action.dest in message, message

    refused()


def test_valid_values_pass(places):
    """The fuzz is not refusing everything: in-range values of a few options parse."""
    args = train_options.parse_args(["--batch-size", "1", "--lr", "1e-5", "--warmup-ratio", "0", "--max-steps", "-1",
                             "--lora-dropout", "0", "--seed", str(2**32 - 1), "--output-dir", places["dir"]])
    assert (args.batch_size, args.lr, args.warmup_ratio, args.max_steps, args.seed) == (1, 1e-5, 0.0, -1, 2**32 - 1)
    assert serve.build_parser().parse_args(["runs/x", "--port", "65535"]).port == 65535
    assert Path(predict.build_parser().parse_args(["runs/x", "--input", places["file"]]).input).is_file()


@pytest.mark.parametrize("pair", [p for p in options() if p[0] == "train.py" and p[1].option_strings
                                  and p[1].dest not in ("method", "dataset", "output_dir", "run_name", "resume",
                                                        "config")], ids=option_id)
def test_a_search_space_outside_an_options_domain_is_refused(pair, places, tmp_path):
    """A search-space YAML (tune.py --space) whose choice lies outside the option's domain is one
    UsageError line before any trial: tweetcls/search_space.py checks the space against the domains."""
    from tweetcls.search_space import load_space

    _, action = pair
    options_by_dest = {a.dest: a for a in train_options.build_parser()._actions}
    space = tmp_path / "space.yaml"

    @FUZZ
    @given(value=outside(action, places))
    def refused(value: str) -> None:
        space.write_text(yaml.safe_dump({action.dest: {"type": "categorical", "choices": [value]}}))
        with pytest.raises(UsageError) as caught:
            load_space(space, options_by_dest)
        message = str(caught.value)
        assert "\n" not in message and f"search space {space}" in message and action.dest in message, message

    refused()


def test_a_search_range_must_lie_in_the_domain(tmp_path):
    from tweetcls.search_space import load_space

    options_by_dest = {a.dest: a for a in train_options.build_parser()._actions}
    cases = {"lr: {type: float, low: -1.0, high: 1.0e-3}": "lr must be a number > 0",
             "lora_dropout: {type: float, low: 0.0, high: 1.5}": "lora_dropout must be a number in [0, 1)",
             "batch_size: {type: int, low: 0, high: 64}": "batch_size must be an integer > 0",
             "lora_r: {type: float, low: 2, high: 8}": "lora_r takes integers",
             "pooling: {type: int, low: 1, high: 2}": "pooling is not a number option"}
    for text, words in cases.items():
        (tmp_path / "space.yaml").write_text(text + "\n")
        with pytest.raises(UsageError, match=re.escape(words)):
            load_space(tmp_path / "space.yaml", options_by_dest)
    (tmp_path / "space.yaml").write_text("lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n")
    assert load_space(tmp_path / "space.yaml", options_by_dest)["lr"]["high"] == 1e-3


@pytest.mark.parametrize("argv, words", [
    (["train.py", "--lora-dropout", "1.5"], "--lora-dropout must be a number in [0, 1), got '1.5'"),
    (["predict.py", "runs/x", "--top-k", "0", "hello"], "--top-k must be an integer > 0, got '0'"),
    (["serve.py", "runs/x", "--port", "70000"], "--port must be an integer in [1, 65535], got '70000'"),
    (["evaluate.py", "runs/x", "--threads", "nan"], "--threads must be an integer > 0, got 'nan'"),
    (["tune.py", "--trials", "1", "--timeout", "inf"], "--timeout must be a number > 0, got 'inf'"),
])
def test_end_to_end_a_bad_value_is_one_line_exit_2_and_nothing_written(argv, words, tmp_path):
    """The commands as a user runs them, in a clean folder: exit 2, one stderr line, no file made."""
    done = subprocess.run([sys.executable, str(REPO / argv[0]), *argv[1:]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0] == f"{argv[0]}: error: {words}"
    assert list(tmp_path.iterdir()) == []

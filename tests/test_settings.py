"""Each command's typed settings (training/settings.py for train and pretrain, the dataclass beside
each other command's parser) stay equal to the command's flags, carry each flag's type and are
frozen; the training settings are checked whenever they change."""

from __future__ import annotations

import dataclasses
import json
import types
import typing

import pytest
import yaml

from tweetcls.commands import evaluate, export, predict, pretrain, serve, tune
from tweetcls.core.errors import UsageError
from tweetcls.core.settings import Settings
from tweetcls.training import options as train_options
from tweetcls.training.settings import PretrainSettings, RunSettings, TrainSettings

COMMANDS = {"train.py": (train_options.build_parser, TrainSettings),
            "pretrain.py": (pretrain.build_parser, PretrainSettings),
            "evaluate.py": (evaluate.build_parser, evaluate.EvaluateSettings),
            "predict.py": (predict.build_parser, predict.PredictSettings),
            "export.py": (export.build_parser, export.ExportSettings),
            "serve.py": (serve.build_parser, serve.ServeSettings),
            "tune.py": (tune.build_parser, tune.TuneSettings)}  # tune's own flags; the rest are TrainSettings


def flag_dests(parser) -> set[str]:
    return {a.dest for a in parser._actions if a.dest != "help"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_is_one_field_and_every_field_one_flag(command):
    build, settings = COMMANDS[command]
    assert {f.name for f in dataclasses.fields(settings)} == flag_dests(build())


def test_the_shared_run_fields_are_the_flags_both_training_commands_have():
    shared = flag_dests(train_options.build_parser()) & flag_dests(pretrain.build_parser())
    assert {f.name for f in dataclasses.fields(RunSettings)} == shared


def allowed(annotation: str, owner: type) -> tuple[type, ...]:
    hint = typing.get_type_hints(owner)[annotation]
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return tuple(typing.get_origin(m) or m for m in members)


def check_types(settings) -> None:
    for field in dataclasses.fields(settings):
        kinds, value = allowed(field.name, type(settings)), getattr(settings, field.name)
        if float in kinds and type(value) is int:
            continue  # YAML's 16 for a float option is a float to every consumer
        assert isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)), \
            f"{field.name}: {value!r} is not {kinds}"


def test_every_parsed_value_has_its_fields_type(tiny_model_dir, tiny_csv, tmp_path):
    """A field says int and the parser gives a float (or a Path where str was promised): caught here,
    for the defaults and for values given as flags and in YAML."""
    check_types(train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv)]))
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {tiny_model_dir}\ndataset: {tiny_csv}\nlora_alpha: 32\nval_file: {tiny_csv}\n"
                      "max_train_samples: 10\nmethod: qlora\n")
    check_types(train_options.parse_args(["--config", str(config), "--data-dir", str(tmp_path)]))
    check_types(pretrain.parse_args(["--model", str(tiny_model_dir), "--mlm-data", "a.txt", "b.txt"]))


def command_lines(tiny_model_dir, tiny_csv, tmp_path) -> dict[str, tuple[object, list[list[str]]]]:
    """Per command: (its parsing, as its main runs it) and argvs: the defaults, then most flags given."""
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1.0e-4, high: 1.0e-3, log: true}\n")
    return {
        "evaluate.py": (evaluate.parse_args, [["runs/x"], [
            "runs/x", "--dataset", str(tiny_csv), "--data-dir", str(tmp_path), "--split", "val", "--text-column", "t",
            "--label-column", "l", "--encoding", "latin-1", "--max-length", "64", "--batch-size", "16",
            "--max-eval-samples", "100", "--threshold", "0.4", "--output", str(tmp_path / "m.json"),
            "--accelerator", "cpu", "--precision", "bf16-mixed", "--compress", "none,int8", "--threads", "1",
            "--latency-batch-size", "8", "--latency-seq-len", "32", "--latency-iters", "5",
            "--save-variants", str(tmp_path / "variants")], ["--compare", str(tmp_path), "--latency"]]),
        "predict.py": (predict.parse_args, [["runs/x"], [
            "runs/x", "what a day", "--backend", "onnx-int8", "so angry", "--text-column", "body", "--id-column", "n",
            "--encoding", "latin-1", "--output", str(tmp_path / "p.jsonl"), "--batch-size", "8", "--top-k", "2",
            "--threads", "1", "--min-confidence", "0.7", "--data-dir", str(tmp_path), "--no-progress-bar"],
            ["runs/x", "--input", str(tiny_csv), "--abstain-precision", "0.9"]]),
        "export.py": (export.parse_args, [["runs/x", "--format", "peft"],
                                          ["runs/x", "--format", "onnx-int8", "--out", str(tmp_path / "onnx")]]),
        "serve.py": (serve.parse_args, [["runs/x"], [
            "runs/x", "--backend", "onnx", "--host", "0.0.0.0", "--port", "8080", "--max-texts", "8",
            "--max-chars", "280", "--max-body-bytes", "4096", "--batch-window-ms", "20", "--min-confidence", "0.6",
            "--data-dir", str(tmp_path), "--workers", "2", "--threads", "1", "--request-timeout", "5",
            "--keep-alive", "2", "--max-connections", "16"]]),
        "tune.py": (tune.parse, [["--trials", "1"], [
            "--trials", "4", "--timeout", "60", "--space", str(space), "--storage", "sqlite:///s.db",
            "--study-name", "s", "--pruner", "hyperband", "--sampler-seed", "3", "--heartbeat-seconds", "2",
            "--no-retrain", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--lora-r", "4"]]),
    }


OTHERS = ("evaluate.py", "predict.py", "export.py", "serve.py", "tune.py")


@pytest.mark.parametrize("command", OTHERS)
def test_every_command_parses_into_its_typed_frozen_settings(command, tiny_model_dir, tiny_csv, tmp_path):
    """As each main parses: the dataclass, every value of its field's type (defaults and flags given), frozen."""
    parse, argvs = command_lines(tiny_model_dir, tiny_csv, tmp_path)[command]
    for argv in argvs:
        parsed = parse(argv)
        if command == "tune.py":  # tune's own settings, and train.py's fixed for every trial
            parsed, fixed = parsed
            assert isinstance(fixed, TrainSettings)
            check_types(fixed)
        assert type(parsed) is COMMANDS[command][1] and isinstance(parsed, Settings)
        check_types(parsed)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(parsed, dataclasses.fields(parsed)[0].name, None)
        assert json.loads(json.dumps(parsed.as_dict())) == parsed.as_dict()  # plain values


def test_serve_workers_get_the_parents_settings_or_fail_at_once(monkeypatch):
    """serve.py --workers N: each worker builds ServeSettings from the parent's JSON; a field missing
    there (or one it does not know) stops the worker with the field's name, not a value gone quiet."""
    built = []
    monkeypatch.setattr("tweetcls.core.quiet.quiet_libraries", lambda *a, **k: None)
    monkeypatch.setattr(serve, "make_app", built.append)
    parent = serve.parse_args(["runs/x", "--workers", "2", "--batch-window-ms", "20", "--min-confidence", "0.6"])
    monkeypatch.setenv(serve.WORKER_ARGS_ENV, json.dumps(parent.as_dict()))
    serve.worker_app()
    assert built == [parent] and type(built[0].batch_window_ms) is float
    values = parent.as_dict()
    del values["max_chars"]
    monkeypatch.setenv(serve.WORKER_ARGS_ENV, json.dumps(values))
    with pytest.raises(TypeError, match="max_chars"):
        serve.worker_app()
    monkeypatch.setenv(serve.WORKER_ARGS_ENV, json.dumps(parent.as_dict() | {"max_texts_per_second": 5}))
    with pytest.raises(TypeError, match="max_texts_per_second"):
        serve.worker_app()
    assert len(built) == 1


def test_parsed_settings_are_typed_frozen_and_recorded_as_plain_values(tiny_model_dir, tiny_csv, tmp_path):
    settings = train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv),
                                         "--lora-r", "4", "--output-dir", str(tmp_path)])
    assert isinstance(settings, TrainSettings) and settings.lora_r == 4 and settings.lr == 5e-4  # lora's default
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.lr = 1.0
    assert yaml.safe_load(yaml.safe_dump(settings.as_dict())) == settings.as_dict()  # config.yaml round trip


def test_settings_from_yaml_are_checked_by_the_flags_domains(tiny_model_dir, tiny_csv, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {tiny_model_dir}\ndataset: {tiny_csv}\nlora_r: 4\nmax-epochs: 2\n")
    settings = train_options.parse_args(["--config", str(config), "--lr", "1e-3"])
    assert (settings.lora_r, settings.max_epochs, settings.lr) == (4, 2, 1e-3)
    config.write_text("lora_r: 2.5\n")
    with pytest.raises(UsageError, match="lora_r must be an integer"):
        train_options.parse_args(["--config", str(config)])


def test_a_changed_setting_is_checked_again_and_the_original_is_untouched(tiny_model_dir, tiny_csv):
    fixed = train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv)])
    trial = train_options.with_options(fixed, "trial 1", lora_r=16, lr=1e-3)
    assert (trial.lora_r, trial.lr, fixed.lora_r, fixed.lr) == (16, 1e-3, 8, 5e-4)
    with pytest.raises(UsageError, match="trial 1: lora_dropout"):
        train_options.with_options(fixed, "trial 1", lora_dropout=1.5)
    with pytest.raises(UsageError, match="belongs to --method distill"):
        train_options.with_options(fixed, "trial 1", teacher="somewhere")  # checked as a whole, not field by field


def test_a_namespace_that_disagrees_with_the_settings_is_refused_at_once():
    import argparse

    parsed = vars(train_options.build_parser().parse_args([]))
    with pytest.raises(TypeError, match="only flags \\['extra'\\]"):
        TrainSettings.from_namespace(argparse.Namespace(**parsed, extra=1))
    del parsed["seed"]
    with pytest.raises(TypeError, match="only fields \\['seed'\\]"):
        TrainSettings.from_namespace(argparse.Namespace(**parsed))

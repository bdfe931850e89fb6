"""training/settings.py: the typed settings a training command hands to the pipeline stay equal
to the command's flags, carry each flag's type, and are checked whenever they change."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest
import yaml

from tweetcls.commands import pretrain
from tweetcls.core.errors import UsageError
from tweetcls.training import options as train_options
from tweetcls.training.settings import PretrainSettings, RunSettings, TrainSettings

COMMANDS = {"train.py": (train_options.build_parser, TrainSettings),
            "pretrain.py": (pretrain.build_parser, PretrainSettings)}


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
    with pytest.raises(UsageError, match="belong to --method distill"):
        train_options.with_options(fixed, "trial 1", teacher="somewhere")  # checked as a whole, not field by field


def test_a_namespace_that_disagrees_with_the_settings_is_refused_at_once():
    import argparse

    parsed = vars(train_options.build_parser().parse_args([]))
    with pytest.raises(TypeError, match="only flags \\['extra'\\]"):
        TrainSettings.from_namespace(argparse.Namespace(**parsed, extra=1))
    del parsed["seed"]
    with pytest.raises(TypeError, match="only fields \\['seed'\\]"):
        TrainSettings.from_namespace(argparse.Namespace(**parsed))

"""tweetcls_core, where hand-made mutants survived (issue 50): option bounds taken from the
documented domain (numpy's seed range, "[0, 1)", "positive"), never from the code's own
constants; booleans refused as numbers; calibration, abstention, thresholds, priors, atomic
writes, task metrics and the head, each checked against what it must compute."""

from __future__ import annotations

import argparse
import numpy as np
import pytest
import torch
import yaml

from tweetcls.commands import pretrain
from tweetcls.training import options as train_options
from tweetcls.commands import tune
from tweetcls.core.errors import UsageError
from tweetcls.core.options import NAME, OUTPUT_FILE, Number, check_value, declared

PARSERS = {"train.py": train_options.build_parser, "pretrain.py": pretrain.build_parser, "tune.py": tune.build_parser}


def _numpy_seed_bounds() -> tuple[int, int]:
    """The widest seed numpy accepts, found by asking numpy (the documented range of --seed)."""
    np.random.seed(2**32 - 1)
    with pytest.raises(ValueError):
        np.random.seed(2**32)
    return 0, 2**32 - 1


@pytest.mark.parametrize("program, flag", [("train.py", "--seed"), ("pretrain.py", "--seed"),
                                           ("tune.py", "--sampler-seed")])
def test_a_seed_is_accepted_exactly_on_numpys_range(program, flag):
    low, high = _numpy_seed_bounds()
    action = next(a for a in declared(PARSERS[program]()) if flag in a.option_strings)
    assert action.type(str(low)) == low and action.type(str(high)) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(str(outside))


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_no_number_option_takes_a_yaml_boolean(program):
    numbers = [a for a in declared(PARSERS[program]()) if isinstance(a.type, Number)]
    assert numbers
    for action in numbers:
        for value in (True, False):
            with pytest.raises(UsageError, match="must be"):
                check_value(action, value, "config.yaml")


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_no_number_option_takes_nan_or_infinity(program):
    """Every number option's domain is a range of finite numbers, so NaN (which fails every comparison,
    so passes any bound checked by comparing) and infinities are refused, as text and as YAML floats."""
    numbers = [a for a in declared(PARSERS[program]()) if isinstance(a.type, Number)]
    for action in numbers:
        for value in ("nan", "NaN", "inf", "-inf", float("nan"), float("inf")):
            with pytest.raises((argparse.ArgumentTypeError, UsageError), match="must be"):
                check_value(action, value, "config.yaml") if not isinstance(value, str) else action.type(value)


def test_a_boolean_in_a_config_file_or_a_search_space_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"lr": True}))
    with pytest.raises(UsageError, match="lr"):
        train_options.parse_args(["--config", str(config)])
    from tweetcls.search_space import load_space

    space = tmp_path / "space.yaml"
    space.write_text("lora_r: {type: categorical, choices: [4, true]}\n")
    with pytest.raises(UsageError, match="lora_r"):
        load_space(space, {a.dest: a for a in train_options.build_parser()._actions})


@pytest.mark.parametrize("flag, accepted, refused", [
    ("--lora-dropout", ["0", "0.999"], ["1", "1.0", "-0.001"]),  # docs/options.md: "a number in [0, 1)"
    ("--lr", ["1e-12"], ["0", "-1e-5"]),  # positive
    ("--batch-size", ["1"], ["0"]),
    ("--kd-alpha", ["0", "1"], ["1.0001", "-0.0001"]),  # a probability: [0, 1]
])
def test_documented_bounds_of_train_options(flag, accepted, refused):
    action = next(a for a in declared(train_options.build_parser()) if flag in a.option_strings)
    for value in accepted:
        action.type(value)
    for value in refused:
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(value)


def test_names_and_output_paths(tmp_path):
    for bad in ("  ", "a\nb", "tab\there"):
        with pytest.raises(argparse.ArgumentTypeError):
            NAME(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        OUTPUT_FILE(str(tmp_path))  # a folder is no output file
    assert OUTPUT_FILE(str(tmp_path / "out.csv"))


def test_the_fitted_temperature_is_the_one_that_generated_the_labels():
    from tweetcls.core.calibration import calibration_report, fit_temperature

    def sample(temperature: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(n, 4, generator=g) * 3
        labels = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g).squeeze(1)
        return logits, labels

    val, test = sample(2.0, 20000, 0), sample(0.7, 20000, 1)
    assert fit_temperature(*val) == pytest.approx(2.0, rel=0.08)
    report = calibration_report(val, test)
    assert report["temperature"] == pytest.approx(fit_temperature(*val), rel=1e-6)
    assert report["temperature"] != pytest.approx(fit_temperature(*test), rel=0.2)


def test_the_abstain_threshold_keeps_the_most_examples_that_reach_the_precision():
    from tweetcls.core.calibration import threshold_for_precision

    confidence = torch.tensor([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = torch.tensor([1, 1, 1, 1, 0, 0])
    chosen = threshold_for_precision(confidence, correct, 0.9)
    assert chosen["threshold"] == pytest.approx(0.7) and chosen["coverage"] == pytest.approx(4 / 6)


def test_a_tie_between_thresholds_goes_to_the_one_nearest_a_half():
    from tweetcls.core.threshold import tune_threshold

    probs = torch.tensor([[0.99, 0.01], [0.01, 0.99], [0.98, 0.02], [0.02, 0.98]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])
    best, scores = tune_threshold(probs, labels, ["a", "b"], "macro_f1")
    assert len(set(scores.values())) == 1 and best == 0.5


def test_the_prior_bias_gives_each_labels_frequency():
    from tweetcls.training.prior_bias import label_prior_logits

    labels = torch.zeros(100, 3)
    labels[:30, 0], labels[:5, 1], labels[:90, 2] = 1, 1, 1
    assert torch.sigmoid(label_prior_logits(labels)) == pytest.approx(torch.tensor([0.3, 0.05, 0.9]), abs=1e-5)


def test_a_failed_atomic_write_leaves_nothing_behind(tmp_path):
    from tweetcls.core.atomic import write_text_atomic

    target = tmp_path / "results.json"
    target.mkdir()
    (target / "inside").write_text("x")  # a non-empty folder where the file should go: the rename fails
    with pytest.raises(OSError):
        write_text_atomic(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_the_task_metric_of_a_class_metric_reads_those_classes_only():
    from tweetcls.core.metrics import metric_scalars

    computed = {"per_class_f1": torch.tensor([0.2, 0.8]), "macro_f1": torch.tensor(0.5)}
    out = metric_scalars(computed, ["not_irony", "irony"], "f1", ["irony"])
    assert out["task_metric"] == pytest.approx(0.8)


def test_berts_pooler_belongs_to_the_head(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from tweetcls.core.surgery import head_module_names

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    assert set(head_module_names(model)) == {"classifier", "bert.pooler"}


def test_mean_pooling_of_a_padded_batch_equals_each_text_alone(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from tweetcls.core.build import load_tokenizer
    from tweetcls.core.pooling import apply_pooling

    model = apply_pooling(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3), "mean")
    model.eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    texts = ["joy", "the river and the garden were quiet today", "so angry"]
    with torch.no_grad():
        together = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
        alone = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)


def test_the_masked_mean_ignores_padding_whatever_it_holds():
    """Property: any batch of any lengths, any values in the padding."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tweetcls.core.pooling import masked_mean

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), seed=st.integers(0, 10_000),
           pad_value=st.floats(-1e4, 1e4))
    def check(lengths, seed, pad_value):
        g = torch.Generator().manual_seed(seed)
        width = max(lengths)
        hidden = torch.randn(len(lengths), width, 4, generator=g)
        mask = torch.zeros(len(lengths), width, dtype=torch.long)
        for row, n in enumerate(lengths):
            mask[row, :n] = 1
            hidden[row, n:] = pad_value
        expected = torch.stack([hidden[row, :n].mean(0) for row, n in enumerate(lengths)])
        assert torch.allclose(masked_mean(hidden, mask), expected, atol=1e-4)

    check()

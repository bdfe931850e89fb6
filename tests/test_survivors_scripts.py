"""tune.py and pretrain.py, where hand-made mutants survived (issue 50): a resumed study with
pruned and failed trials, two studies with the same seed, the pruning rules, and
--mlm-probability / --seed / --lora reaching what they set. Trials run a stand-in for
pipeline.run, so these take seconds: what is tested is the study, not training."""

from __future__ import annotations

import math
import types

import optuna
import pytest
import torch
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from tweetcls.commands import pretrain
from tweetcls.training import pipeline
from tweetcls.commands import tune

SPACE = "lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\nlora_r: {type: categorical, choices: [2, 4]}\n"
DISTRIBUTIONS = {"lr": FloatDistribution(1e-3, 1e-2, log=True), "lora_r": CategoricalDistribution([2, 4])}


@pytest.fixture()
def fake_training(monkeypatch, tmp_path):
    """pipeline.run replaced by a stand-in whose val metric is a fixed function of the options; records each call."""
    calls = []

    def run(args, extra_callbacks=None, **_):
        calls.append(args)
        run_dir = tmp_path / "fake-runs" / str(len(calls))
        run_dir.mkdir(parents=True)
        return {"run_dir": str(run_dir), "val": {"task_metric": -abs(math.log10(args.lr) + 2.5) + 0.01 * args.lora_r},
                "task_metric": "macro_f1", "test": {"task_metric": 0.0}}

    monkeypatch.setattr(pipeline, "run", run)
    return calls


def tune_argv(model_dir, csv, out, space, trials, name="s", *extra):
    return ["--method", "lora", "--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out),
            "--trials", str(trials), "--space", str(space), "--study-name", name, "--no-retrain", *extra]


@pytest.fixture()
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def test_a_resumed_study_counts_pruned_trials_and_retries_failed_ones(tiny_model_dir, tiny_csv, tmp_path, space,
                                                                     fake_training):
    """3 finished trials (2 complete, 1 pruned) and a failed one: --trials 3 is done, --trials 4 runs one more."""
    (tmp_path / "s").mkdir()
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}",
                                direction="maximize")
    for state, value, lr in ((TrialState.COMPLETE, 0.5, 2e-3), (TrialState.PRUNED, None, 5e-3),
                             (TrialState.FAIL, None, 7e-3), (TrialState.COMPLETE, 0.6, 3e-3)):
        study.add_trial(create_trial(state=state, value=value, params={"lr": lr, "lora_r": 2},
                                     distributions=DISTRIBUTIONS,
                                     intermediate_values={0: 0.1} if state == TrialState.PRUNED else None))
    result = tune.run(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 3))
    assert fake_training == []  # complete + pruned = 3: nothing left to run
    assert result["best_value"] == pytest.approx(0.6)
    tune.run(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4))
    assert len(fake_training) == 1  # exactly one more, the failed trial not counted
    assert tune.finished(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")) == 4


def test_two_studies_with_one_seed_draw_the_same_trials_and_never_see_test(tiny_model_dir, tiny_csv, tmp_path, space,
                                                                          fake_training):
    drawn = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        tune.run(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4, name, "--sampler-seed", str(seed),
                           "--pruner", "none"))
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / name / 'study.db'}")
        drawn[name] = [(t.params["lr"], t.params["lora_r"]) for t in study.trials]
    assert drawn["a"] == drawn["b"]
    assert drawn["a"] != drawn["c"]  # the seed is what makes them equal
    assert len(set(drawn["a"])) == len(drawn["a"])  # trial N draws from (seed, N): no trial repeats another
    assert all(args.test is False for args in fake_training)  # trials never score the test split
    # best.yaml holds the best trial's values over the fixed options
    study = optuna.load_study(study_name="a", storage=f"sqlite:///{tmp_path / 'a' / 'study.db'}")
    best = yaml.safe_load((tmp_path / "a" / "best.yaml").read_text())
    assert best["lr"] == pytest.approx(study.best_params["lr"]) and best["lora_r"] == study.best_params["lora_r"]


def test_the_best_trial_is_retrained_once_and_only_when_the_study_is_done(tiny_model_dir, tiny_csv, tmp_path, space,
                                                                          fake_training):
    argv = [a for a in tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4) if a != "--no-retrain"]
    stopped = tune.run([*argv, "--timeout", "0.001"])  # stops after its first trial: 1 of 4 done
    assert stopped["retrained"] is None and [a.run_name for a in fake_training] == ["trial-0"]
    done = tune.run(argv)
    assert done["retrained"] is not None and [a.run_name for a in fake_training].count("best") == 1


def test_the_budget_counts_the_trials_numbered_before_this_one():
    study = optuna.create_study(direction="maximize")
    for value in (0.1, 0.2, 0.3):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, params={}, distributions={}))
    trial = study.ask()
    assert tune.beyond_budget(trial, 3) and not tune.beyond_budget(trial, 4)


def test_the_median_pruner_stops_a_trial_below_the_median():
    pruner = tune.make_pruner("median")
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for _ in range(3):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.9, params={}, distributions={},
                                     intermediate_values={0: 0.9}))
    bad = study.ask()
    bad.report(0.1, step=0)
    assert bad.should_prune()


def test_pruning_ignores_validations_outside_fit():
    """train.py validates the best checkpoint once more after fitting: not an epoch, never reported."""
    reports = []
    trial = types.SimpleNamespace(report=lambda value, step: reports.append((step, value)), should_prune=lambda: False)
    callback = tune.fit_only_pruning(trial)
    metrics = {"val/task_metric": torch.tensor(0.4)}
    after_fit = types.SimpleNamespace(state=types.SimpleNamespace(fn="validate"), sanity_checking=False,
                                      callback_metrics=metrics)
    callback.on_validation_end(after_fit, None)
    assert reports == []
    during_fit = types.SimpleNamespace(state=types.SimpleNamespace(fn="fit"), sanity_checking=False,
                                       callback_metrics=metrics)
    callback.on_validation_end(during_fit, None)
    assert reports == [(0, pytest.approx(0.4))]


class _Stop(Exception):
    pass


def test_mlm_probability_seed_and_max_length_reach_the_masking(tiny_model_dir, tmp_path, monkeypatch):
    """The masking rate of the batches pretrain.py builds follows --mlm-probability; --seed seeds them;
    --max-length cuts their texts (a short one truncates, a long one does not)."""
    import tweetcls.mlm.data

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"the {w} and {v} was so very {u} today" for w in "abcdefghij" for v in "klmnopqrst"
                               for u in ("great", "awful", "quiet")) + "\n")
    real = tweetcls.mlm.data.MaskedLMDataModule
    seen = {}

    def capture(*args, **kwargs):
        datamodule = real(*args, **kwargs)
        seen["seed"] = torch.initial_seed()
        datamodule.setup()
        features = [datamodule.encoded["train"][i] for i in range(len(datamodule.encoded["train"]))]
        torch.manual_seed(0)
        batch = datamodule.masking(features)
        words = sum(len(set(w for w in f["word_ids"] if w >= 0)) for f in features)
        targets_words = sum(len({f["word_ids"][i] for i in range(len(f["word_ids"]))
                                 if batch["labels"][row, i] != -100}) for row, f in enumerate(features))
        seen["rate"] = targets_words / words
        seen["longest"] = max(len(f["input_ids"]) for f in features)
        raise _Stop

    monkeypatch.setattr(tweetcls.mlm.data, "MaskedLMDataModule", capture)
    for probability, seed, max_length in (("0.5", 7, 6), ("0.1", 11, 64)):
        args = pretrain.parse_args(["--model", str(tiny_model_dir), "--mlm-data", str(texts), "--heldout", "10",
                                    "--mlm-probability", probability, "--seed", str(seed),
                                    "--max-length", str(max_length),
                                    "--output-dir", str(tmp_path / "runs")])
        with pytest.raises(_Stop):
            pretrain.pretrain_and_save(args)
        assert seen["rate"] == pytest.approx(float(probability), abs=0.05)
        assert seen["seed"] == seed
        assert seen["longest"] == 6 if max_length == 6 else 6 < seen["longest"] < max_length


def test_pretrain_lora_trains_adapters_and_the_untied_head_only_and_saves_the_merged_encoder(tiny_model_dir,
                                                                                           tmp_path):
    from transformers import AutoModel

    from tweetcls.lora import lora_layers

    args = pretrain.parse_args(["--model", str(tiny_model_dir), "--lora", "--lora-r", "2", "--no-fast-dropout",
                                "--output-dir", str(tmp_path)])
    model, info = pretrain.build(args, tiny_model_dir)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or not n.startswith(model.base_model_prefix + ".") for n in trainable)
    assert not model.get_input_embeddings().weight.requires_grad  # the tied decoder stays frozen
    assert any("lora_" in n for n in trainable) and any(not "lora_" in n for n in trainable)  # the head trains
    torch.manual_seed(0)
    for layer in lora_layers(model).values():
        torch.nn.init.normal_(layer.lora_B, std=0.5)  # as if trained
    model.eval()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        expected = model.base_model(input_ids=ids).last_hidden_state
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    from tweetcls.core.build import load_tokenizer

    record = {"method": "mlm-lora", "model": str(tiny_model_dir), "dataset": "texts", "seed": 0, "run_dir": str(run_dir),
              "lora": info["lora"]}  # what pretrain.py records (results.json's schema refuses less)
    pretrain.export(model, load_tokenizer(tiny_model_dir), tiny_model_dir, run_dir, record)
    saved = AutoModel.from_pretrained(run_dir / "model").eval()
    with torch.no_grad():
        got = saved(input_ids=ids).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-5)


def test_serve_port_is_accepted_exactly_on_the_range_the_os_binds():
    """--port's bounds come from the socket API (a TCP port is 16 bits; 0 means "any port", which a
    server announced by its --port cannot use), never from the option's own constant."""
    import argparse
    import socket

    from tweetcls.commands import serve
    from tweetcls.core.options import declared

    with socket.socket() as s, pytest.raises(OverflowError):
        s.bind(("127.0.0.1", 65536))
    action = next(a for a in declared(serve.build_parser()) if "--port" in a.option_strings)
    assert action.type("1") == 1 and action.type("65535") == 65535
    for outside in ("0", "65536", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(outside)

"""What TensorBoard draws from a run's events, checked against TensorBoard 2.21's own rules
(reimplemented here from its web bundle): smoothing 0.6 (debiased EMA, a constant left as it
is) and "Ignore outliers in chart scaling" (only values between the 5th and 95th percentile of
a chart's points set its scale). And the latency a run records, and the comparison of reruns."""

from __future__ import annotations

import re
import statistics
import time

import pytest
import torch

from tweetcls.review.compare import comparison_markdown, group_by_configuration


def tensorboard_smoothed(values: list[float], weight: float = 0.6) -> list[float]:
    """TensorBoard's ``resmoothDataset``: debiased EMA; a constant series is left unchanged."""
    if all(v == values[0] for v in values):
        return list(values)
    out, last, count = [], 0.0, 0
    for v in values:
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(last / (1 - weight ** count))
    return out


def tensorboard_scale_keeps(values: list[float]) -> set[float]:
    """The values TensorBoard's linear scale keeps in view with "Ignore outliers" on (its default)."""
    ordered = sorted(values)

    def quantile(p: float) -> float:  # d3.quantile
        i = (len(ordered) - 1) * p
        lo = int(i)
        return ordered[lo] + (ordered[min(lo + 1, len(ordered) - 1)] - ordered[lo]) * (i - lo)

    return {v for v in values if quantile(0.05) <= v <= quantile(0.95)}


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def test_a_per_epoch_curve_ends_where_its_value_is_under_default_smoothing(tmp_path):
    """A 3-epoch loss logged once an epoch smoothed to 0.557 where the value was 0.457 (issue 47)."""
    from tweetcls.review.tensorboard import ReviewLogger

    logger = ReviewLogger(save_dir=tmp_path, name="run", version="")
    epochs = [0.95, 0.60, 0.457]
    for epoch, value in enumerate(epochs, start=1):
        logger.log_metrics({"train/loss_epoch": value, "val/task_metric": 1 - value, "epoch": epoch}, step=50 * epoch)
    logger.finalize("success")
    values = scalars(tmp_path)
    assert "epoch" not in values
    for tag, last in (("train/loss_epoch", 0.457), ("val/task_metric", 1 - 0.457)):
        points = sorted(values[tag])
        assert points[-1] == (150, pytest.approx(last)) and max(s for s, _ in points) == 150  # no point after the last
        smoothed_end = tensorboard_smoothed([v for _, v in points])[-1]
        assert abs(smoothed_end - last) < 0.01 * abs(epochs[-2] - epochs[-1]) + 1e-6, (tag, smoothed_end, last)


def test_the_recheck_of_the_best_checkpoint_adds_no_point(tmp_path):
    from tweetcls.review.tensorboard import ReviewLogger

    logger = ReviewLogger(save_dir=tmp_path, name="run", version="")
    logger.log_metrics({"val/loss": 0.5}, step=10)
    logger.muted = ("val/", "test/")
    logger.log_metrics({"val/loss": 0.5, "test/loss": 0.4}, step=11)
    logger.finalize("success")
    values = scalars(tmp_path)
    assert max(s for s, _ in values["val/loss"]) == 10 and "test/loss" not in values


def test_final_numbers_of_ten_runs_all_stay_on_the_chart_and_in_scalars(tmp_path):
    """One point per run: TensorBoard's outlier rule drew a 22.7M-parameter run off a chart of
    0.8M-parameter LoRA runs, and SCALARS drew nothing. Every run must stay in view."""
    from torch.utils.tensorboard import SummaryWriter

    from tweetcls.review.tensorboard import log_hparams

    params = [22_700_000] + [800_000 + 1_000 * i for i in range(9)]
    for i, count in enumerate(params):
        with SummaryWriter(str(tmp_path / f"run{i}")) as writer:
            log_hparams(writer, {"method": "lora"}, {"hp/params_trainable": count}, step=300 + 7 * i)
    points = [v for i in range(len(params)) for _, v in scalars(tmp_path / f"run{i}")["hp/params_trainable"]]
    assert tensorboard_scale_keeps(points) == set(params)
    for i in range(len(params)):
        run = scalars(tmp_path / f"run{i}")["hp/params_trainable"]
        assert len(run) >= 2 and {v for _, v in run} == {params[i]}  # a line (SCALARS draws it), flat (no ramp)
        assert tensorboard_smoothed([v for _, v in run])[-1] == params[i]


def results_for(**changes) -> dict:
    base = {"method": "lora", "model": "minilm-l6", "dataset": "tweet_eval/emotion", "seed": 0,
            "task_metric": "macro_f1", "params_total": 22_713_216, "params_trainable": 147_456,
            "trainable_pct": 0.649, "fit_seconds": 61.27, "train_samples_per_sec": 50.0, "steps": 300, "epochs": 3,
            "precision": "32-true", "run_dir": "runs/x", "test": {"task_metric": 0.7774}, "val": {"task_metric": 0.78},
            "inference": {"latency_p50_ms": 86.4, "latency_p10_ms": 80.1, "latency_p90_ms": 97.9, "batch_size": 32,
                          "seq_len": 64, "threads": 2, "backend": "torch", "precision": "fp32", "load_before": 1.5,
                          "cpus": 2, "throughput_per_s": 370.0},
            "config": {"method": "lora", "model": "minilm-l6", "dataset": "tweet_eval/emotion", "lr": 5e-5,
                       "max_epochs": 3, "seed": 0, "max_train_samples": 500, "lora_r": 8, "lora_alpha": 16,
                       "lora_targets": "query,value", "lora_dropout": 0.1},
            "lora": {"r": 8, "targets": ["query", "value"]}}
    return base | changes


def test_the_run_card_and_hparams_say_the_numbers_as_results_json_has_them():
    from tweetcls.review.tensorboard import COLUMNS, review_hparams, run_card_rows

    results = results_for()
    card = dict(run_card_rows(results))
    assert card["test"] == "0.7774 macro_f1"
    assert card["trainable"] == "147,456 (0.6%)"
    assert card["train time"] == "61.3 s, 300 steps"
    assert card["CPU latency"] == "86 ms (80-98)"
    assert card["timed on"] == "batch 32x64, 2 threads" and card["backend"] == "torch fp32"
    assert card["load"] == "1.5 on 2 CPUs"
    assert card["data"] == "tweet_eval/emotion, first 500"  # a subset run is not a full-data one
    values = review_hparams(results["config"], results)  # HPARAMS' text columns, in TensorBoard's order
    assert [COLUMNS[k] for k in sorted(values)] == ["run", "lr, epochs, seed", "data, precision"]
    assert [values[k] for k in sorted(values)] == ["lora minilm-l6 r=8", "5e-5, 3 ep, seed 0",  # not 0.000050000
                                                   "emotion[:500], fp32"]  # a subset run is not a full-data one
    # a column holds about 22 characters at 1280 px ('emotion, first 200, bf16' was cut with '...')
    assert max(len(v) for v in review_hparams(results["config"] | {"max_train_samples": 10_000, "seed": 42},
                                              results).values()) <= 22


def record(seed: int, score: float, **changes) -> dict:
    from tweetcls.review.compare import record_from_results
    from pathlib import Path

    return record_from_results(results_for(seed=seed, test={"task_metric": score}, **changes), Path(f"runs/s{seed}"))


def test_a_rerun_of_one_seed_is_not_read_as_two_seeds():
    rows = group_by_configuration([record(0, 0.7774), record(0, 0.7774)])
    table = comparison_markdown(rows)
    assert "±" not in table and "seeds 0 (2 runs) |" in table
    rows = group_by_configuration([record(0, 0.70), record(0, 0.70), record(0, 0.70), record(1, 0.80)])
    # the seed's reruns averaged first: mean of seeds 0.75, not of runs 0.725
    assert rows[0]["test_metric"] == pytest.approx(0.75)
    assert rows[0]["test_metric_sd"] == pytest.approx(statistics.stdev([0.70, 0.80]))
    assert "0.7500 ± 0.0707" in comparison_markdown(rows)


def test_a_subset_run_is_its_own_row():
    full = results_for()["config"] | {"max_train_samples": None}
    rows = group_by_configuration([record(0, 0.7), record(1, 0.6, config=full)])
    assert len(rows) == 2
    table = comparison_markdown(rows)
    assert "| tweet_eval/emotion, all |" in table and "| tweet_eval/emotion, first 500 |" in table


class Sleeper(torch.nn.Module):
    """A 'model' that takes ``ms`` per call, and ``burst_ms`` every ``every``-th call (load on a shared machine)."""

    def __init__(self, ms: float, burst_ms: float = 0.0, every: int = 0) -> None:
        super().__init__()
        self.ms, self.burst_ms, self.every, self.calls = ms, burst_ms, every, 0
        self.config = type("Config", (), {"vocab_size": 50})()

    def forward(self, **inputs):
        self.calls += 1
        burst = self.every and self.calls % self.every == 0
        time.sleep((self.burst_ms if burst else self.ms) / 1000)


def test_latency_is_a_median_with_its_spread_and_says_what_was_timed():
    from tweetcls.core.latency import cpu_latency

    measured = cpu_latency(Sleeper(2, burst_ms=120, every=5))  # a mean would be 25.6 ms
    assert measured["passes"] == 30 and measured["latency_p50_ms"] < 15  # bursts move the spread, not the figure
    assert measured["latency_p90_ms"] > 40 and measured["latency_p10_ms"] <= measured["latency_p50_ms"]
    assert {"batch_size", "seq_len", "threads", "backend", "precision", "load_before", "load_after"} <= set(measured)
    assert (measured["batch_size"], measured["seq_len"], measured["threads"]) == (32, 64, torch.get_num_threads())


def test_side_by_side_times_each_model_as_itself():
    from tweetcls.core.latency import side_by_side

    measured = side_by_side({"slow": (Sleeper(12), "32-true"), "fast": (Sleeper(2), "32-true")}, rounds=2, iters=3)
    assert 10 < measured["slow"]["latency_p50_ms"] < 40 and measured["fast"]["latency_p50_ms"] < 8
    assert measured["slow"]["passes"] == measured["fast"]["passes"] == 6


def test_train_help_says_each_default_once(capsys):
    """`train.py --help` once printed "(default: minilm-l6) (default: None)"."""
    from tweetcls.training.options import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "(default: None)" not in text and "(default: minilm-l6) (default" not in text
    assert "(default: tweet_eval/emotion)" in text  # a real default is still shown


@pytest.mark.parametrize("script", ["evaluate", "export", "predict", "pretrain", "serve", "tune"])
def test_every_command_says_each_default_once(script):
    """pretrain.py --help printed "(default: $TWEETCLS_DATA_DIR) (default: None)"."""
    import importlib

    text = " ".join(importlib.import_module(f"tweetcls.commands.{script}").build_parser().format_help().split())
    assert "(default: None)" not in text and not re.search(r"\(default: [^)]*\) \(default", text)

"""evaluate.py --compare: every run under a folder in one table, seeds averaged."""

from __future__ import annotations

import json
import statistics

import pytest

from tweetcls.commands import evaluate
from tweetcls.commands import train


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tiny_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    common = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(out),
              "--max-epochs", "1", "--batch-size", "16", "--no-progress-bar"]
    for name, extra in (("lora-s0", ["--method", "lora", "--seed", "0"]), ("lora-s1", ["--method", "lora", "--seed", "1"]),
                        ("full-s0", ["--method", "full", "--seed", "0"])):
        assert train.main([*common, *extra, "--run-name", name]) == 0
    # the tiny runs all score the same, so a mean could not be told from a max or a first value:
    # give the second seed a score of its own
    path = out / "lora-s1" / "results.json"
    results = json.loads(path.read_text())
    results["test"]["task_metric"] = 0.5
    path.write_text(json.dumps(results))
    return out


def test_seeds_are_averaged_and_configurations_kept_apart(runs, capsys):
    assert evaluate.main(["--compare", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "| run | test macro_f1 | trainable |" in out
    summary = json.loads((runs / "comparison.json").read_text())
    rows = {r["method"]: r for r in summary["rows"]}
    assert set(rows) == {"lora", "full"} and len(summary["runs"]) == 3
    lora = rows["lora"]
    per_seed = [json.loads((runs / f"lora-s{s}" / "results.json").read_text())["test"]["task_metric"] for s in (0, 1)]
    assert lora["seeds"] == [0, 1]
    assert per_seed[0] != per_seed[1]
    assert lora["test_metric"] == pytest.approx(statistics.mean(per_seed))
    assert lora["test_metric_sd"] == pytest.approx(statistics.stdev(per_seed))
    assert rows["full"]["params_trainable"] == rows["full"]["params_total"] > lora["params_trainable"]
    per_seed_ms = [json.loads((runs / f"lora-s{s}" / "results.json").read_text())["inference"]["latency_p50_ms"]
                   for s in (0, 1)]
    assert min(per_seed_ms) > 0 and lora["latency_ms"] == pytest.approx(statistics.mean(per_seed_ms))
    assert (runs / "comparison.csv").read_text().count("\n") == 4  # header + one line per run
    assert "±" in (runs / "comparison.md").read_text()


def test_runs_differing_only_in_learning_rate_are_two_rows_that_say_so(tmp_path):
    from tweetcls.review.compare import run_record, group_by_configuration, comparison_markdown

    base = {"dataset": "d", "method": "lora", "model": "m", "seed": 0, "params_total": 10, "params_trainable": 1,
            "trainable_pct": 10.0, "fit_seconds": 1.0, "train_samples_per_sec": 1.0, "task_metric": "macro_f1",
            "test": {"task_metric": 0.5}, "val": {"task_metric": 0.5}}
    for lr in (1e-3, 5e-4):
        (tmp_path / str(lr)).mkdir()
        (tmp_path / str(lr) / "results.json").write_text(json.dumps(base | {"config": {"lr": lr, "max_epochs": 3}}))
    rows = group_by_configuration([run_record(tmp_path / str(lr) / "results.json") for lr in (1e-3, 5e-4)])
    assert len(rows) == 2
    table = comparison_markdown(rows)
    assert "| lora m lr 0.001 fp32 seeds 0 |" in table and "| lora m lr 0.0005 fp32 seeds 0 |" in table
    assert {line.count("|") for line in table.splitlines() if line.startswith("|")} == {7}  # the header's columns


def test_runs_differing_only_in_pooling_are_two_rows(tmp_path):
    from tweetcls.review.compare import comparison_markdown, group_by_configuration, run_record

    base = {"dataset": "d", "method": "lora", "model": "m", "seed": 0, "params_total": 10, "params_trainable": 1,
            "trainable_pct": 10.0, "fit_seconds": 1.0, "train_samples_per_sec": 1.0, "task_metric": "macro_f1",
            "test": {"task_metric": 0.5}, "val": {"task_metric": 0.5}, "config": {"lr": 1e-3, "max_epochs": 3}}
    for pooling in ("mean", "cls"):
        (tmp_path / pooling).mkdir()
        (tmp_path / pooling / "results.json").write_text(json.dumps(base | {"pooling": pooling}))
    rows = group_by_configuration([run_record(tmp_path / p / "results.json") for p in ("mean", "cls")])
    assert sorted(r["pooling"] for r in rows) == ["cls", "mean"]
    table = comparison_markdown(rows)
    assert "| lora m pooling mean fp32 seeds 0 |" in table and "| lora m pooling cls fp32 seeds 0 |" in table


def test_precision_separates_rows_and_a_rerun_seed_counts_once(tmp_path):
    from tweetcls.review.compare import comparison_markdown, group_by_configuration, run_record

    base = {"dataset": "d", "method": "lora", "model": "m", "seed": 0, "params_total": 10, "params_trainable": 1,
            "trainable_pct": 10.0, "fit_seconds": 1.0, "train_samples_per_sec": 1.0, "task_metric": "macro_f1",
            "val": {"task_metric": 0.5}, "config": {"lr": 1e-3, "max_epochs": 3}}
    runs = {"fp32": ("32-true", 0.70), "bf16-a": ("bf16-mixed", 0.60), "bf16-b": ("bf16-mixed", 0.62)}
    for name, (precision, score) in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(
            base | {"precision": precision, "test": {"task_metric": score}}))
    rows = {r["precision"]: r for r in group_by_configuration([run_record(tmp_path / n / "results.json") for n in runs])}
    assert set(rows) == {"fp32", "bf16"}  # the same seed in two precisions is two rows, not "2 seeds"
    assert rows["fp32"]["test_metric"] == pytest.approx(0.70)
    assert rows["bf16"]["seeds"] == [0] and rows["bf16"]["runs"] == 2
    assert rows["bf16"]["test_metric"] == pytest.approx(0.61)
    table = comparison_markdown(list(rows.values()))
    assert "| lora m bf16 seeds 0 (2 runs) |" in table and "| lora m fp32 seeds 0 |" in table


def test_comparison_is_in_tensorboard(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    evaluate.main(["--compare", str(runs)])
    tags = set()
    for events in (runs / "_comparison").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["images"]) | set(acc.Tags()["tensors"])
    assert {"comparison/1_metric_vs_params", "comparison/2_metric_vs_latency", "comparison/3_rows",
            "comparison/table/text_summary"} <= tags
    images = [acc for events in (runs / "_comparison").glob("events.out.tfevents.*")
              if (acc := EventAccumulator(str(events))).Reload() and acc.Tags()["images"]]
    for tag in ("comparison/1_metric_vs_params", "comparison/3_rows"):
        image = images[-1].Images(tag)[-1]
        assert (image.width, image.height) == (319, 215)  # a TIME SERIES card's box at 1280 px: shown 1:1


def test_compare_on_a_folder_without_runs(tmp_path, capsys):
    assert evaluate.main(["--compare", str(tmp_path)]) == 2
    assert "no runs under" in capsys.readouterr().err


def test_models_are_labelled_by_name_and_a_runs_model_folder_by_its_run():
    from tweetcls.review.compare import model_label

    assert model_label("minilm-l6") == "minilm-l6"
    assert model_label("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert model_label("runs/suites/intermediate/intermediate-minilm-go_emotions-s0/model") == \
        "intermediate-minilm-go_emotions-s0"
    assert model_label("runs/teacher-odd/") == "teacher-odd"


def test_comparison_figure_names_every_row_of_a_large_table():
    from tweetcls.review.compare import comparison_figure

    rows = [{"method": "distill", "model": f"teacher-{i}", "layers": ",".join(map(str, range(i % 6 + 1))),
             "lora": "", "precision": "fp32", "kd": "logits T=2 a=0.5", "lr": 5e-5, "dataset": "tweet_eval/emotion",
             "params_trainable": 1_000_000 * (i + 1), "latency_ms": 50.0 + i, "test_metric": 0.7 + i / 100,
             "test_metric_sd": 0.01} for i in range(12)]
    fig = comparison_figure(rows)
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 12 and len(set(texts)) == 12  # one distinct entry per row: nothing lost to overlap
    assert texts[0].startswith("1. distill teacher-0 0 ") and texts[11].startswith("12. ")
    numbers = {a.get_text() for ax in fig.axes for a in ax.texts}
    assert numbers == {str(i) for i in range(1, 13)}


def test_the_card_sized_comparison_names_every_row_and_labels_ticks_plainly():
    from tweetcls.review.compare import card_figures, compact_number

    rows = [{"method": "lora" if i else "full", "model": "minilm-l6", "layers": "", "lora": "r=8 query,value" if i else "",
             "precision": "fp32", "kd": "", "lr": 5e-4 if i else 5e-5, "epochs": 3, "dataset": "tweet_eval/emotion",
             "metric_name": "macro_f1", "params_trainable": 22_714_756 if i == 0 else 147_456 * i,
             "latency_ms": 80.0 + i, "test_metric": 0.7 + i / 100, "test_metric_sd": 0.0, "seeds": [0], "runs": 1}
            for i in range(3)]
    figures = card_figures(rows)
    legend = figures["comparison/3_rows"].texts[0].get_text()
    assert [line.split(".")[0] for line in legend.splitlines() if line[0].isdigit()] == ["1", "2", "3"]
    params = figures["comparison/1_metric_vs_params"].axes[0]
    params.figure.canvas.draw()
    assert params.get_xscale() == "log"  # 0.15M and 22.7M on one axis
    assert {t.get_text() for t in params.get_xticklabels() if t.get_text()} >= {"1M", "10M"}
    assert compact_number(22_714_756) == "22.7M" and compact_number(7811) == "7.81k" and compact_number(85.8) == "85.8"


def test_runs_outside_the_folder_join_the_table(runs, tmp_path):
    """--teacher's run lives in another suite's folder; compare_runs(folder, also=[it]) adds its row."""
    from tweetcls.review.compare import compare_runs

    alone = tmp_path / "suite"
    alone.mkdir()
    summary = compare_runs(alone, also=[runs / "full-s0"])
    assert [r["method"] for r in summary["rows"]] == ["full"] and summary["rows"][0]["seeds"] == [0]

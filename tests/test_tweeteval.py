"""experiments/tweeteval.py: prediction files score as TweetEval's evaluation script scores them,
the leaderboard keeps published and partial rows honest, and the command runs end to end."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from experiments import tweeteval, tweeteval_leaderboard as board, tweeteval_scoring as scoring
from tweetcls.datamodules.sources import STANCE_TARGETS

REPO = Path(__file__).resolve().parents[1]
STANCE = ("abortion", "atheism", "climate", "feminist", "hillary")


def script_score(tweeteval_path: Path, predictions_path: Path, task: str) -> float:
    """cardiffnlp/tweeteval evaluaton_script.py's load_gold_pred + single_task_results, as written there."""
    from sklearn.metrics import classification_report

    if "stance" in task:
        gold, pred = [], []
        for stance_t in STANCE:
            gold.append(open(os.path.join(tweeteval_path, task, stance_t, "test_labels.txt")).read().split("\n")[:-1])
            pred.append(open(os.path.join(predictions_path, task, stance_t + ".txt")).read().split("\n")[:-1])
        gold = [p for each_target in gold for p in each_target]
        pred = [p for each_target in pred for p in each_target]
    else:
        gold = open(os.path.join(tweeteval_path, task, "test_labels.txt")).read().split("\n")[:-1]
        pred = open(os.path.join(predictions_path, task + ".txt")).read().split("\n")[:-1]
    results = classification_report(gold, pred, output_dict=True)
    if task == "irony":
        return results["1"]["f1-score"]
    if task == "stance":
        return (results["1"]["f1-score"] + results["2"]["f1-score"]) / 2
    return results["macro avg"]["f1-score"]


def write_lines(path: Path, values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{v}\n" for v in values))


@pytest.fixture
def fake_benchmark(tmp_path):
    """Gold and predictions where the wrong computations give other numbers: irony's macro-F1 is not
    F1(ironic); stance targets of unequal size and skill, so the mean of per-target scores is not the pooled one."""
    gold, pred = tmp_path / "gold", tmp_path / "pred"
    write_lines(gold / "irony" / "test_labels.txt", [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    write_lines(pred / "irony.txt", [1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    write_lines(gold / "emotion" / "test_labels.txt", [0, 1, 2, 3, 0, 1, 2, 3])
    write_lines(pred / "emotion.txt", [0, 1, 2, 3, 1, 1, 2, 0])
    sizes = {"abortion": 12, "atheism": 3, "climate": 7, "feminist": 5, "hillary": 9}
    for i, target in enumerate(STANCE):
        g = [(j + i) % 3 for j in range(sizes[target])]
        p = [x if (j * (i + 1)) % 4 else (x + 1) % 3 for j, x in enumerate(g)]
        write_lines(gold / "stance" / target / "test_labels.txt", g)
        write_lines(pred / "stance" / f"{target}.txt", p)
    return gold, pred


def test_prediction_files_score_as_the_evaluation_script_scores_them(fake_benchmark):
    gold, pred = fake_benchmark
    for task in ("irony", "emotion", "stance"):
        assert scoring.score_predictions(gold, pred, task) == pytest.approx(script_score(gold, pred, task), abs=1e-12)
    # the fixture tells the official numbers from the plausible wrong ones
    irony = scoring.score_predictions(gold, pred, "irony")
    macro = scoring.official_score(*scoring.gold_and_predicted(gold, pred, "irony"), "emotion")
    assert irony == pytest.approx(0.4) and macro != pytest.approx(irony)
    per_target = [scoring.official_score(scoring.read_ids(gold / "stance" / t / "test_labels.txt"),
                                         scoring.read_ids(pred / "stance" / f"{t}.txt"), "stance") for t in STANCE]
    assert sum(per_target) / 5 != pytest.approx(scoring.score_predictions(gold, pred, "stance"), abs=1e-6)


def test_a_prediction_file_without_its_last_newline_or_with_a_missing_line_is_refused(fake_benchmark, tmp_path):
    gold, pred = fake_benchmark
    (pred / "irony.txt").write_text("1\n0\n0\n0\n0\n0\n0\n0\n0\n1")  # the script would drop the last id
    with pytest.raises(ValueError, match="9 predictions for 10"):
        scoring.score_predictions(gold, pred, "irony")
    scoring.write_ids(tmp_path / "out" / "irony.txt", [1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert scoring.read_ids(tmp_path / "out" / "irony.txt") == ["1"] + ["0"] * 8 + ["1"]


def test_the_committed_prediction_files_give_the_leaderboards_numbers(shared_data):
    """Every project row's per-seed score in experiments/results/leaderboard.json is what the
    evaluation script's computation gives for the committed prediction files."""
    path = REPO / "experiments" / "results" / "leaderboard.json"
    if not path.is_file():
        pytest.skip("no leaderboard committed yet")
    rows = [r for r in json.loads(path.read_text())["rows"] if r["source"] == "this project"]
    checked = 0
    for row in rows:
        for task, seeds in row["per_seed"].items():
            for seed, value in seeds.items():
                folder = REPO / "experiments" / "results" / "tweeteval" / row["recipe"] / f"s{seed}"
                assert value == pytest.approx(100 * script_score(shared_data / "tweet_eval", folder, task), abs=1e-9)
                checked += 1
    assert checked or not any(r["seeds_scored"] for r in rows)  # a row with a scored seed was checked


def fake_row(per_task_seeds: dict[str, list[float]], seeds=(0, 1, 2)) -> dict:
    per_seed = {t: dict(zip(seeds, per_task_seeds.get(t, []))) for t in scoring.OFFLINE_TASKS}
    seconds = {t: {s: 10.0 for s in v} for t, v in per_seed.items()}
    return board.summarise("lora", per_seed, seconds, list(seeds), 22_714_756, "minilm-l6")


def test_published_rows_average_six_tasks_without_sentiment():
    rows = {r["model"]: r for r in board.published_rows()}
    assert rows["BERTweet (135M)"]["six_task_mean"] == pytest.approx(66.98)
    assert rows["TimeLMs-2021"]["six_task_mean"] == pytest.approx(64.82)
    assert rows["RoBERTa-Base"]["scores"]["stance"] == 68.0 and rows["RoBERTa-Base"]["sentiment"] == 71.3


def test_the_leaderboard_marks_partial_rows_and_never_fills_a_missing_cell(tmp_path):
    full = fake_row({t: [50.0 + i, 52.0 + i, 54.0 + i] for i, t in enumerate(scoring.OFFLINE_TASKS)})
    assert not full["partial"] and full["scores"]["emoji"] == 52.0 and full["sd"]["emoji"] == 2.0
    assert full["six_task_mean"] == pytest.approx(54.5) and full["six_task_mean_sd"] == pytest.approx(2.0)
    assert full["cpu_train_seconds_total"] == 60.0
    partial = fake_row({"stance": [60.0, 62.0, 64.0], "irony": [70.0]})
    assert partial["partial"] and partial["six_task_mean"] is None and partial["scores"]["emoji"] is None
    assert "irony s1" in partial["missing"] and "emoji s0" in partial["missing"]
    summary = board.write_leaderboard([full, partial], tmp_path)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in summary["markdown"].splitlines()}
    row = next(v for k, v in lines.items() if "(partial)" in k)
    assert "70.0 (1/3 seeds)" in row and "62.0 ± 2.0" in row and "— (partial)" in row and row.count("| — |") >= 4
    assert "sentiment left out" in summary["markdown"]
    saved = json.loads((tmp_path / "leaderboard.json").read_text())
    assert [r["six_task_mean"] for r in saved["rows"]][-2:] == [pytest.approx(54.5), None]
    assert all("parameters" in r and "scores" in r for r in saved["rows"])
    table = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert len(table) == len(board.PUBLISHED) + 2 and table[-1]["source"] == "this project"
    assert table[-1]["emoji"] == "" and table[-1]["six_task_mean"] == "" and table[-1]["irony"] == "70.0"
    assert list((tmp_path / board.TENSORBOARD_DIR).glob("events.out.tfevents.*"))


def test_a_partial_row_shows_the_six_task_mean_of_its_whole_seeds_only(tmp_path):
    # seed 0 has every task, seed 1 only stance and irony: the mean is seed 0's alone, and says so
    values = {t: [40.0 + 2 * i] for i, t in enumerate(scoring.OFFLINE_TASKS)}
    values["stance"] += [90.0]
    values["irony"] += [90.0]
    partial = fake_row(values)
    assert partial["partial"] and partial["six_task_mean"] is None and partial["whole_seeds"] == [0]
    assert partial["whole_seeds_six_task_mean"] == pytest.approx(45.0)
    row = next(line for line in board.write_leaderboard([partial], tmp_path)["markdown"].splitlines()
               if "(partial" in line)
    assert "| 45.0 (seed 0 only) |" in row
    assert fake_row({"stance": [60.0]})["whole_seeds_six_task_mean"] is None


def test_tasks_run_smallest_first_with_seeds_inside_and_students_after_their_teachers(tmp_path):
    runs = tweeteval.plan("lora", tmp_path, list(tweeteval.RUN_ORDER), [0, 1, 2])
    names = [r.name for r, _ in runs]
    assert names[:5] == [f"stance-{t}-s0" for t in STANCE_TARGETS] and names[-3:] == ["emoji-s0", "emoji-s1", "emoji-s2"]
    assert len(names) == len(set(names)) == (5 + 5) * 3
    students = tweeteval.plan("student", tmp_path, ["irony"], [0, 1])
    assert [(r.parent.name, r.name) for r, _ in students] == [
        ("teacher", "irony-s0"), ("teacher", "irony-s1"), ("teacher", "irony-s2"), ("student", "irony-s0"),
        ("student", "irony-s1")]
    flags = students[-1][1]
    assert flags[flags.index("--teacher") + 1].split(",") == [str(tmp_path / "teacher" / f"irony-s{s}") for s in (0, 1, 2)]


def test_label_ids_are_read_from_two_and_three_column_mappings(tmp_path):
    """emoji's mapping.txt has a third column (the emoji's name): the id of the label name (the emoji)
    is still the first column (a 2-column reader stopped the emoji run with a ValueError)."""
    (tmp_path / "emoji").mkdir()
    (tmp_path / "emoji" / "mapping.txt").write_text("0\t❤\t_red_heart_\t\n1\t😍\t_smiling_face_\t\n", encoding="utf-8")
    (tmp_path / "stance").mkdir()
    (tmp_path / "stance" / "mapping.txt").write_text("0\tnone\n1\tagainst\n2\tfavor\n", encoding="utf-8")
    assert tweeteval.mapping_ids(tmp_path, "tweet_eval/emoji") == {"❤": "0", "😍": "1"}
    assert tweeteval.mapping_ids(tmp_path, "tweet_eval/stance/abortion") == {"none": "0", "against": "1", "favor": "2"}


@pytest.fixture
def tiny_tweeteval(tmp_path) -> Path:
    """A data folder with a tiny irony task (keyword-labelled texts) in TweetEval's file layout."""
    from conftest import make_texts

    folder = tmp_path / "data" / "tweet_eval" / "irony"
    (folder).mkdir(parents=True)
    (folder / "mapping.txt").write_text("0\tnon_irony\n1\tirony\n")
    for split, n, seed in (("train", 48, 0), ("val", 12, 1), ("test", 15, 2)):
        rows = make_texts(n, seed)
        write_lines(folder / f"{split}_text.txt", [t for t, _ in rows])
        write_lines(folder / f"{split}_labels.txt", [1 if label == "anger" else 0 for _, label in rows])
    return tmp_path / "data"


def test_the_command_trains_predicts_and_writes_the_leaderboard_then_skips_finished_runs(
        tiny_model_dir, tiny_tweeteval, tmp_path, capsys):
    root, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--recipe", "lora", "--tasks", "irony", "--seeds", "0", "--root", str(root), "--results-dir", str(results),
            "--data-dir", str(tiny_tweeteval), "--", "--model", str(tiny_model_dir), "--max-epochs", "1",
            "--batch-size", "16", "--lr", "5e-3"]
    assert tweeteval.main(argv) == 0
    predictions = results / "tweeteval" / "lora" / "s0" / "irony.txt"
    assert len(scoring.read_ids(predictions)) == 15
    saved = json.loads((results / "leaderboard.json").read_text())
    ours = saved["rows"][-1]
    assert ours["recipe"] == "lora" and ours["partial"] and ours["six_task_mean"] is None
    expected = 100 * script_score(tiny_tweeteval / "tweet_eval", predictions.parent, "irony")
    assert ours["per_seed"]["irony"]["0"] == pytest.approx(expected) and ours["parameters"] > 0
    capsys.readouterr()
    assert tweeteval.main(argv) == 0
    assert "skip" in capsys.readouterr().err
    assert tweeteval.main(["--report-only", "--root", str(root), "--results-dir", str(results),
                           "--data-dir", str(tiny_tweeteval)]) == 0

    # a later session on a fresh machine: the run folders are gone, the committed files are not
    import shutil

    shutil.rmtree(root)
    capsys.readouterr()
    assert tweeteval.main(argv) == 0
    assert "finished earlier" in capsys.readouterr().err and not root.joinpath("lora").exists()
    again = json.loads((results / "leaderboard.json").read_text())["rows"][-1]
    assert again["per_seed"] == ours["per_seed"] and again["parameters"] == ours["parameters"]
    assert again["cpu_train_seconds"] == ours["cpu_train_seconds"] and again["runs_finished"] == 1
"""The TweetEval leaderboard: the published rows beside this project's, as Markdown, CSV, JSON
and a TensorBoard figure.

Scores are in points (F1 x 100) as the published table gives them. The six-task mean leaves
out sentiment, whose training text is not offline here, for every row alike, so published
and project rows compare on the same six tasks. A project cell is the mean ± sd of the
per-seed official scores (experiments/tweeteval_scoring.py) of the prediction files; a cell
with fewer seeds than asked says so, a missing one stays empty, and a row with either is
marked partial and gets no six-task mean; it shows instead the six-task mean of the seeds that
have every task (``whole_seeds``), labelled with those seeds, so a first full seed is readable.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import statistics
from datetime import date
from pathlib import Path

from experiments.tweeteval_scoring import OFFLINE_TASKS, prediction_file, score_predictions

# cardiffnlp/tweeteval README, test set (issue 48): emoji, emotion, hate, irony, offensive, sentiment, stance, ALL
PUBLISHED = {
    "BERTweet (135M)": (33.4, 79.3, 56.4, 82.1, 79.5, 73.4, 71.2, 67.9),
    "TimeLMs-2021": (34.0, 80.2, 55.1, 64.5, 82.2, 73.7, 72.9, 66.2),
    "RoBERTa-Retrained": (31.4, 78.5, 52.3, 61.7, 80.5, 72.8, 69.3, 65.2),
    "RoBERTa-Base": (30.9, 76.1, 46.6, 59.7, 79.5, 71.3, 68.0, 61.3),
    "FastText": (25.8, 65.2, 50.6, 63.1, 73.4, 62.9, 65.4, 58.1),
    "SVM": (29.3, 64.7, 36.7, 61.7, 52.3, 62.9, 67.3, 53.5),
}
PUBLISHED_PARAMETERS = {"BERTweet (135M)": 135_000_000}  # the only size the published table states
RECIPE_LABELS = {"lora": "MiniLM-L6, LoRA (train.py --method lora)", "full": "MiniLM-L6, full fine-tuning",
                 "teacher": "MPNet-12 teacher (full fine-tuning)",
                 "student": "MiniLM-L6 from 3 MPNet-12 teachers + pool (best <= 23M)"}
SENTIMENT_NOTE = ("six-task mean: emoji, emotion, hate, irony, offensive, stance; sentiment left out for every row "
                  "(its training text is not offline here); the published ALL column averages all seven")
TENSORBOARD_DIR = "leaderboard-tensorboard"


def published_rows() -> list[dict]:
    rows = []
    for name, values in PUBLISHED.items():
        scores = dict(zip(("emoji", "emotion", "hate", "irony", "offensive"), values[:5])) | {"stance": values[6]}
        rows.append({"model": name, "source": "published", "scores": scores, "sentiment": values[5],
                     "all_published": values[7], "six_task_mean": round(sum(scores.values()) / 6, 2),
                     "parameters": PUBLISHED_PARAMETERS.get(name), "partial": False})
    return rows


def project_row(recipe: str, root: Path, results_dir: Path, tweeteval: Path, seeds: list[int]) -> dict:
    """One recipe's row from its prediction files (RESULTS/tweeteval/RECIPE/s<seed>/) and its runs'
    records (committed beside them, else the run folders' results.json)."""
    from experiments.tweeteval import datasets, read_record

    predictions = results_dir / "tweeteval" / recipe
    per_seed: dict[str, dict[int, float]] = {t: {} for t in OFFLINE_TASKS}
    seconds: dict[str, dict[int, float]] = {t: {} for t in OFFLINE_TASKS}
    parameters, model = None, None
    for task in OFFLINE_TASKS:
        for seed in seeds:
            folder = predictions / f"s{seed}"
            files = [prediction_file(folder, task, d.rsplit("/", 1)[-1]) for d in datasets(task)]
            runs = [read_record(root, results_dir, recipe, d, seed) for d in datasets(task)]
            if not all(f.is_file() for f in files) or None in runs:
                continue
            per_seed[task][seed] = 100 * score_predictions(tweeteval, folder, task)
            seconds[task][seed] = sum(r.get("fit_seconds") or 0.0 for r in runs)
            if parameters is None or task == "emotion":
                parameters, model = runs[0].get("params_total"), runs[0].get("model")
    row = summarise(recipe, per_seed, seconds, seeds, parameters, model)
    finished = sum(read_record(root, results_dir, recipe, d, s) is not None
                   for t in OFFLINE_TASKS for s in seeds for d in datasets(t))
    planned = sum(len(datasets(t)) for t in OFFLINE_TASKS) * len(seeds)
    return row | {"runs_finished": finished, "runs_planned": planned}


def summarise(recipe: str, per_seed: dict[str, dict[int, float]], seconds: dict[str, dict[int, float]],
              seeds: list[int], parameters: int | None, model: str | None) -> dict:
    """Means, sds, partial marks and the six-task mean (only where every task has every seed)."""
    scores = {t: round(statistics.mean(v.values()), 2) if v else None for t, v in per_seed.items()}
    sd = {t: round(statistics.stdev(v.values()), 2) if len(v) > 1 else None for t, v in per_seed.items()}
    missing = [f"{t} s{s}" for t in OFFLINE_TASKS for s in seeds if s not in per_seed[t]]
    complete = not missing
    whole_seeds = [s for s in seeds if all(s in per_seed[t] for t in OFFLINE_TASKS)]
    seed_means = [statistics.mean(per_seed[t][s] for t in OFFLINE_TASKS) for s in whole_seeds]
    cpu = {t: round(statistics.mean(v.values()), 1) if v else None for t, v in seconds.items()}
    return {"model": RECIPE_LABELS.get(recipe, recipe), "recipe": recipe, "source": "this project",
            "base_model": model, "scores": scores, "sd": sd, "per_seed": per_seed,
            "seeds_scored": {t: sorted(v) for t, v in per_seed.items() if v},
            "six_task_mean": round(statistics.mean(scores.values()), 2) if complete else None,
            "six_task_mean_sd": round(statistics.stdev(seed_means), 2) if complete and len(seed_means) > 1 else None,
            "parameters": parameters, "cpu_train_seconds": cpu,
            "cpu_train_seconds_total": round(sum(cpu.values()), 1) if complete else None,
            "whole_seeds": whole_seeds,
            "whole_seeds_six_task_mean": round(statistics.mean(seed_means), 2) if seed_means else None,
            "partial": not complete, "missing": missing, "seeds": list(seeds)}


def cell(row: dict, task: str) -> str:
    value = row["scores"].get(task)
    if value is None:
        return "—"
    if row["source"] == "published":
        return f"{value:.1f}"
    n, want = len(row["per_seed"][task]), len(row["seeds"])
    sd = f" ± {row['sd'][task]:.1f}" if row["sd"][task] is not None else ""
    return f"{value:.1f}{sd}" + (f" ({n}/{want} seeds)" if n < want else "")


def millions(n: int | None) -> str:
    return f"{n / 1e6:.1f}M" if n else "—"


def markdown(rows: list[dict]) -> str:
    lines = ["| model | " + " | ".join(OFFLINE_TASKS) + " | six-task mean | sentiment | ALL (7, published) "
             "| parameters | CPU train s (all tasks, per seed) |",
             "|---|" + "---|" * (len(OFFLINE_TASKS) + 5)]
    for row in rows:
        ours = row["source"] != "published"
        if row["six_task_mean"] is None and row.get("whole_seeds_six_task_mean") is not None:
            seeds = ", ".join(map(str, row["whole_seeds"]))
            mean = f"{row['whole_seeds_six_task_mean']:.1f} (seed{'s' if len(row['whole_seeds']) > 1 else ''} {seeds} only)"
        elif row["six_task_mean"] is None:
            mean = "— (partial)"
        else:
            sd = f" ± {row['six_task_mean_sd']:.1f}" if ours and row.get("six_task_mean_sd") is not None else ""
            mean = f"{row['six_task_mean']:.1f}{sd}"
        runs = f": {row['runs_finished']}/{row['runs_planned']} runs" if "runs_planned" in row else ""
        name = row["model"] + (f" **(partial{runs})**" if row["partial"] else "")
        sentiment = "not offline" if ours else f"{row['sentiment']:.1f}"
        every = "—" if ours else f"{row['all_published']:.1f}"
        total = "—" if not ours or row["cpu_train_seconds_total"] is None else f"{row['cpu_train_seconds_total']:.0f}"
        lines.append(f"| {name} | " + " | ".join(cell(row, t) for t in OFFLINE_TASKS)
                     + f" | {mean} | {sentiment} | {every} | {millions(row['parameters'])} | {total} |")
    return "\n".join(lines) + f"\n\n{SENTIMENT_NOTE}.\n"


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "source", *OFFLINE_TASKS, *(f"{t}_sd" for t in OFFLINE_TASKS), "six_task_mean",
                     "partial", "parameters", "cpu_train_seconds_total"])
    for row in rows:
        sd = row.get("sd", {})
        writer.writerow([row["model"], row["source"], *(("" if row["scores"][t] is None else row["scores"][t])
                                                         for t in OFFLINE_TASKS),
                         *(("" if sd.get(t) is None else sd[t]) for t in OFFLINE_TASKS),
                         "" if row["six_task_mean"] is None else row["six_task_mean"], row["partial"],
                         row["parameters"] or "", row.get("cpu_train_seconds_total") or ""])
    return buffer.getvalue()


def figure(rows: list[dict]):
    """Grouped bars: per task (and the six-task mean), one bar per row; ours hatched, partial cells lighter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*OFFLINE_TASKS, "six-task mean"]
    fig, ax = plt.subplots(figsize=(14, 6))
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        values = [row["scores"][t] for t in OFFLINE_TASKS] + [row["six_task_mean"]]
        xs = [g + (i - (len(rows) - 1) / 2) * width for g in range(len(groups))]
        ours = row["source"] != "published"
        errors = [row["sd"][t] or 0.0 for t in OFFLINE_TASKS] + [row.get("six_task_mean_sd") or 0.0] if ours else None
        kept = [i for i, v in enumerate(values) if v is not None]
        ax.bar([xs[i] for i in kept], [values[i] for i in kept], width,
               yerr=[errors[i] for i in kept] if ours else None, capsize=2,
               label=row["model"] + (" (partial)" if row["partial"] else ""), hatch="//" if ours else None,
               edgecolor="black" if ours else None, linewidth=0.5)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("official TweetEval score (test)")
    ax.set_title("TweetEval leaderboard: published rows and this project's (hatched: mean ± sd over seeds)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.07))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def write_tensorboard(rows: list[dict], folder: Path, text: str) -> Path:
    """The figure and the Markdown table as one fresh TensorBoard run (older event files removed)."""
    from torch.utils.tensorboard import SummaryWriter

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    writer = SummaryWriter(str(folder))
    writer.add_figure("tweeteval/leaderboard", figure(rows))
    writer.add_text("tweeteval/leaderboard", text)
    writer.close()
    return folder


def write_leaderboard(project_rows: list[dict], folder: Path) -> dict:
    """RESULTS/leaderboard.md/.csv/.json and the TensorBoard figure; returns what the JSON holds plus the Markdown."""
    rows = published_rows() + project_rows
    text = markdown(rows)
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {platform.platform()}",
               "metric": "TweetEval evaluation script: macro-F1 (emoji, emotion, hate, offensive), F1 of irony, "
                         "mean F1 of against and favor over the five stance targets pooled; x 100",
               "note": SENTIMENT_NOTE, "tasks": list(OFFLINE_TASKS), "rows": rows}
    (folder / "leaderboard.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "leaderboard.md").write_text(text)
    (folder / "leaderboard.csv").write_text(csv_text(rows))
    write_tensorboard(rows, folder / TENSORBOARD_DIR, text)
    return summary | {"markdown": text}

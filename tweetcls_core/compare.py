"""Gather every run's results.json under a folder into one comparison table.

Runs that differ only in their seed form one row with mean ± sd; the table goes to
Markdown, CSV and JSON beside the runs, and to TensorBoard (text and figures) in
``<folder>/_comparison`` next to the runs' own HPARAMS rows.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

from tweetcls_core.errors import UsageError
from tweetcls_core.atomic import write_text_atomic
from tweetcls_core.runs import RESULTS_FILE, read_results, write_json


def run_record(path: Path) -> dict:
    """One row of the table from a run's results.json; a file train.py did not write is a UsageError."""
    try:
        return _record(read_results(path.parent), path)
    except (KeyError, TypeError, AttributeError) as err:
        raise UsageError(f"{path} lacks what train.py writes ({type(err).__name__}: {err})") from None


def _record(r: dict, path: Path) -> dict:
    cfg = r.get("config", {})
    info = r.get("distill") or {}
    layers = info.get("layers")
    model_file = path.parent / "model" / "model.safetensors"
    return {
        "run": str(path.parent), "dataset": r["dataset"], "method": r["method"], "model": r["model"],
        "layers": ",".join(map(str, layers)) if layers else "", "pooling": r.get("pooling") or "",
        "lora": f"r={r['lora']['r']} {','.join(sorted({t.split('.')[-1] for t in r['lora']['targets']}))}" if r.get("lora") else "",
        "kd": distillation_label(info), "lr": cfg.get("lr"), "epochs": cfg.get("max_epochs"), "seed": r["seed"],
        "precision": precision_label(r.get("precision") or cfg.get("precision") or "32-true"),
        "params_total": r["params_total"], "params_trainable": r["params_trainable"],
        "trainable_pct": r["trainable_pct"], "fit_seconds": r["fit_seconds"],
        "train_samples_per_sec": r["train_samples_per_sec"],
        "size_mb": model_file.stat().st_size / 1e6 if model_file.is_file() else None,
        "latency_ms": (r.get("inference") or {}).get("latency_p50_ms"),
        "metric_name": r["task_metric"], "test_metric": r["test"].get("task_metric"),
        "test_accuracy": r["test"].get("accuracy"), "test_macro_f1": r["test"].get("macro_f1"),
        "val_metric": r["val"]["task_metric"],
    }


def distillation_label(info: dict) -> str:
    """How a distilled run learned from its teacher: 'CE only', 'logits T=2 a=0.5', '... + hidden cosine',
    '... + 10000 unlabelled from tweet_eval/emoji', ', mean of 3 teachers' (runs that differ here must not
    be averaged together)."""
    if not info:
        return ""
    if not info.get("alpha"):
        return "CE only"
    label = f"logits T={info['temperature']:g} a={info['alpha']:g}"
    if info.get("hidden_loss", "none") != "none":
        label += f" + hidden {info['hidden_loss']}"
    if info.get("transfer"):
        label += f" + {info['transfer']['texts']} unlabelled from {info['transfer']['data']}"
    if isinstance(info.get("teacher_logits_cache"), list):
        label += f", mean of {len(info['teacher_logits_cache'])} teachers"
    return label


def precision_label(precision: str) -> str:
    """'bf16' for Lightning's bf16 settings, 'fp32' for 32-true, else the setting as given."""
    return "bf16" if "bf16" in precision else "fp32" if precision in ("32-true", "32", "32-mixed") else precision


def model_label(model: str) -> str:
    """A model as the table names it: a short name as given, a folder by its name, and a run's
    ``model/`` folder (a model fine-tuned by an earlier run) by that run's name."""
    path = Path(str(model).rstrip("/"))
    return path.parent.name if path.name == "model" and path.parent.name else path.name


GROUP_KEY = ("dataset", "method", "model", "pooling", "layers", "lora", "kd", "lr", "epochs", "precision")
AVERAGED = ("test_metric", "test_accuracy", "test_macro_f1", "val_metric", "fit_seconds", "train_samples_per_sec",
            "latency_ms")


def group_by_configuration(records: list[dict]) -> list[dict]:
    """One row per configuration; mean and sd over its seeds."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault(tuple(rec[k] for k in GROUP_KEY), []).append(rec)
    rows = []
    for members in groups.values():
        row = {k: members[0][k] for k in GROUP_KEY}
        row |= {k: members[0][k] for k in ("params_total", "params_trainable", "trainable_pct", "size_mb", "metric_name")}
        row["seeds"] = sorted({m["seed"] for m in members})  # distinct: a rerun of a seed is not a new seed
        row["runs"] = len(members)
        for key in AVERAGED:
            values = [m[key] for m in members if m[key] is not None]
            row[key] = statistics.mean(values) if values else None
            row[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return sorted(rows, key=lambda r: (r["dataset"], -(r["test_metric"] or 0)))


def _pm(row: dict, key: str, fmt: str) -> str:
    if row[key] is None:
        return "—"
    text = fmt.format(row[key])
    return text + (" ± " + fmt.format(row[key + "_sd"]) if row["runs"] > 1 else "")


def comparison_markdown(rows: list[dict]) -> str:
    head = ("| dataset | method | model | pooling | layers / LoRA | KD | lr | epochs | precision | params | trainable "
            "| train s | train samples/s | CPU ms / 32x64 | size MB | test metric | test acc | seeds |")
    lines = [head, "|" + "---|" * 18]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['method']} | {model_label(r['model'])} | {r.get('pooling') or '—'} "
            f"| {r['layers'] or r['lora'] or '—'} | {r['kd'] or '—'} "
            f"| {'—' if r['lr'] is None else format(r['lr'], 'g')} | {r['epochs'] or '—'} | {r['precision']} | {r['params_total']:,} | {r['params_trainable']:,} ({r['trainable_pct']:.2f}%) "
            f"| {_pm(r, 'fit_seconds', '{:.0f}')} | {_pm(r, 'train_samples_per_sec', '{:.1f}')} "
            f"| {_pm(r, 'latency_ms', '{:.0f}')} "
            f"| {'—' if r['size_mb'] is None else format(r['size_mb'], '.1f')} "
            f"| {r['metric_name']} {_pm(r, 'test_metric', '{:.4f}')} | {_pm(r, 'test_accuracy', '{:.4f}')} "
            f"| {seeds_label(r)} |")
    return "\n".join(lines)


def seeds_label(row: dict) -> str:
    """How many distinct seeds a row averages, and its run count where a seed was run twice."""
    seeds = len(row["seeds"])
    return str(seeds) if row["runs"] == seeds else f"{seeds} ({row['runs']} runs)"


def compare_runs(folder: str | Path, also: list[Path] = ()) -> dict:
    """The table for every run under ``folder`` (plus the run directories in ``also``)."""
    folder = Path(folder)
    paths = sorted(folder.rglob(RESULTS_FILE)) + [Path(d) / RESULTS_FILE for d in also]
    if not paths:
        raise UsageError(f"no runs under {folder} (no {RESULTS_FILE} found); pass the --output-dir of train.py")
    records = []
    for path in paths:
        try:
            if str(read_results(path.parent).get("method", "")).startswith("mlm"):
                continue  # a masked-LM run made an encoder, not a classifier: nothing to score here
            records.append(run_record(path))
        except UsageError as err:  # one broken run must not take the whole table down
            print(f"warning: skipping {path.parent}: {err}", file=sys.stderr)
    if not records:
        raise UsageError(f"no readable runs under {folder}; every {RESULTS_FILE} found was skipped")
    rows = group_by_configuration(records)
    markdown = comparison_markdown(rows)
    write_text_atomic(folder / "comparison.md", markdown + "\n")
    with open(folder / "comparison.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    write_json(folder / "comparison.json", {"rows": rows, "runs": records})
    log_comparison(rows, folder / "_comparison", markdown)
    return {"rows": rows, "runs": records, "markdown": markdown, "folder": str(folder)}


def row_label(row: dict) -> str:
    """How a row is named in the figure: method, model, and what else sets it apart."""
    parts = [row["method"], model_label(row["model"]), row["layers"] or row["lora"], row["kd"],
             f"lr {row['lr']:g}" if row["lr"] is not None else "", row["precision"] if row["precision"] != "fp32" else ""]
    return " ".join(p for p in parts if p)


def comparison_figure(rows: list[dict]):
    """Test metric against trainable parameters and against CPU latency. Each row is a numbered
    point explained in the legend, so 10+ rows stay readable (labels beside points overlap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab20").colors
    fig, axes = plt.subplots(1, 2, figsize=(15, 5 + 0.12 * max(0, len(rows) - 10)))
    for ax, key, label in ((axes[0], "params_trainable", "trainable parameters"),
                           (axes[1], "latency_ms", "CPU inference ms per batch of 32 x 64")):
        for number, r in enumerate(rows, start=1):
            if r[key] is None or r["test_metric"] is None:  # a search trial scores no test
                continue
            color = colors[(number - 1) % len(colors)]
            ax.errorbar(r[key], r["test_metric"], yerr=r["test_metric_sd"], fmt="o", color=color,
                        label=f"{number}. {row_label(r)} ({r['dataset']})")
            ax.annotate(str(number), (r[key], r["test_metric"]), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test task metric (mean ± sd over seeds)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def log_comparison(rows: list[dict], log_dir: Path, markdown: str) -> None:
    """The table as text, and the comparison figure (also saved as PNG beside the table)."""
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    fig = comparison_figure(rows)
    fig.savefig(log_dir.parent / "comparison.png", dpi=90, bbox_inches="tight")
    with SummaryWriter(str(log_dir)) as writer:
        writer.add_text("comparison/table", markdown)
        writer.add_figure("comparison/metric_vs_params_and_latency", fig)
    plt.close(fig)

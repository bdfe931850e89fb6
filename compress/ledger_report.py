"""Write the ledger as Markdown, CSV, JSON and to TensorBoard (HPARAMS rows, text, figure)."""

from __future__ import annotations

import csv
from pathlib import Path

from tweetcls.core.runs import write_json

COLUMNS = [
    ("variant", "variant", "{}"),
    ("params_total", "params", "{:,}"),
    ("params_trainable", "trainable", "{:,}"),
    ("params_nonzero", "non-zero", "{:,}"),
    ("size_mb", "size MB", "{:.1f}"),
    ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("latency_p90_ms", "p90 ms", "{:.1f}"),
    ("throughput_per_s", "samples/s", "{:.1f}"),
    ("task_metric", "metric", "{:.4f}"),
    ("delta", "Δ metric", "{:+.4f}"),
]


def ledger_markdown(rows: list[dict], metric_name: str) -> str:
    head = [title if key != "task_metric" else metric_name for key, title, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def write_files(rows: list[dict], stem: Path, meta: dict) -> tuple[Path, Path]:
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_json(json_path, {**meta, "rows": rows})
    return csv_path, json_path


def log_to_tensorboard(rows: list[dict], log_dir: Path, metric_name: str, meta: dict) -> None:
    """One HPARAMS row per variant, the table as text, and metric-vs-size/latency plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        for row in rows:
            writer.add_hparams(
                {"variant": row["variant"], "dataset": meta["dataset"], "split": meta["split"]},
                {"ledger/task_metric": row["task_metric"], "ledger/delta": row["delta"],
                 "ledger/size_mb": row["size_mb"], "ledger/latency_p50_ms": row["latency_p50_ms"],
                 "ledger/params_nonzero": row["params_nonzero"]},
                run_name=row["variant"].replace(":", "_"),
            )
        writer.add_text("compression/ledger", ledger_markdown(rows, metric_name))
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key, label in ((axes[0], "size_mb", "size on disk (MB)"),
                               (axes[1], "latency_p50_ms", "CPU latency per batch, p50 (ms)")):
            for row in rows:
                ax.scatter(row[key], row["task_metric"])
                ax.annotate(row["variant"], (row[key], row["task_metric"]), fontsize=8)
            ax.set_xlabel(label)
            ax.set_ylabel(metric_name)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{meta['dataset']} ({meta['split']})")
        fig.tight_layout()
        writer.add_figure("compression/metric_vs_size_and_latency", fig)
        plt.close(fig)

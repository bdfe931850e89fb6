"""What a reviewer sees of one run in TensorBoard (2.21 opens on TIME SERIES whenever a run has a
scalar or an image, with "Ignore outliers in chart scaling" on and smoothing 0.6).

- TIME SERIES opens on the ``compare`` group: one card per run, an image of the run's test
  metric, trainable parameters (count and share), training time, CPU latency with its spread
  and what was timed, training data and precision. Cards of two runs stand side by side, so
  the first screen (1280x900) compares them without a click.
- ``hp/*``, ``params/*``, ``time/*``: the final numbers as a level from step 0 to the last step
  (two equal points). A single point is a dot, easy to miss, hidden in SCALARS and, being an
  "outlier" to TensorBoard's 5th-95th percentile scaling, drawn off the chart (a 22.7M-parameter
  run against 0.8M LoRA runs); two points per run keep every run inside the scale for up to 10
  runs, and a constant is left as it is by smoothing.
- Per-epoch values (``val/*``, ``*_epoch``) are drawn as a level across the steps of the
  epoch they describe (``LEVEL_POINTS`` points), so the default smoothing ends within
  0.6**10 = 0.6% of the last change of the value; with one point per epoch the smoothed end
  of a 3-epoch loss read 0.557 where the value was 0.457. The re-check of the best
  checkpoint after fit logs nothing (it repeated val's last point one step later).
- HPARAMS: one row per run written once at the end (no placeholder at the start). Its table
  (2.21's legacy plugin) gives every column at least 160 px beside Trial ID and "Show Metrics",
  shows the first 5 hparams and the first 5 metrics declared, and cuts a longer cell with "...":
  at 1280 px four columns of 157 px (about 22 characters) fit without scrolling sideways. So a
  run declares four: ``run`` (method, model, LoRA rank), ``lr, epochs, seed``, ``data,
  precision`` (``emotion[:200]``, Hugging Face's slice of a split, for a run on the first 200
  training texts: not comparable with one on all) as text, and the test metric (the val metric
  for a search trial, which scores no test). Text, because TensorBoard prints numbers with 5
  significant digits (lr 0.000050000, epochs 3.0000). Parameters, time and latency are on the
  run's card and in ``hp/*``.
- CUSTOM SCALARS: train loss against val loss, and the val task metric, side by side.
- IMAGES: the test confusion matrix and per-class F1 (multi-label: F1 against frequency).
- TEXT: the run's row of the comparison table (the columns of ``evaluate.py --compare``)
  and the summary train.py prints.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from tweetcls.review.compare import comparison_markdown, data_label, group_by_configuration, model_label, \
    params_label, precision_label, record_from_results
from tweetcls.core.latency import latency_label, measured_label

LEVEL_POINTS = 10  # points per epoch of a per-epoch value: smoothing 0.6 ends within 0.6**10 of it


def per_epoch(tag: str) -> bool:
    return tag.startswith("val/") or tag.endswith("_epoch")


class ReviewLogger(TensorBoardLogger):
    """TensorBoardLogger for review: no ``epoch`` scalar (a step counter drawn as a curve, which
    smoothing showed as "2.40"), per-epoch values drawn as levels, and ``muted`` prefixes
    (set while the best checkpoint is re-scored after fit) left out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.muted: tuple[str, ...] = ()
        self._last_step: dict[str, int] = {}

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        metrics = {k: v for k, v in metrics.items() if k != "epoch" and not (self.muted and k.startswith(self.muted))}
        if step is not None:
            for tag, value in metrics.items():
                if per_epoch(tag):
                    for at in level_steps(self._last_step.get(tag, 0), step):
                        self.experiment.add_scalar(tag, float(value), at)
                    self._last_step[tag] = step
        super().log_metrics(metrics, step)


def level_steps(previous: int, step: int, points: int = LEVEL_POINTS) -> list[int]:
    """The steps after ``previous`` and before ``step`` at which a per-epoch value is repeated,
    so the epoch's level has ``points`` points (fewer where the epoch has fewer steps)."""
    return sorted({previous + round((step - previous) * i / points) for i in range(1, points)} - {previous, step})


COLUMNS = {"1_run": "run", "2_training": "lr, epochs, seed", "3_data": "data, precision"}  # HPARAMS' columns, in order
METRIC_NAMES = {"hp/test_task_metric": "test metric", "hp/val_task_metric": "val metric"}


def short_number(value: float) -> str:
    """A learning rate as people write it: 5e-05 -> '5e-5', 0.0005 -> '5e-4', 0.01 -> '0.01'
    (TensorBoard prints a number as 0.000050000)."""
    if value and abs(value) < 0.01:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):.3g}e{int(exponent)}"
    return f"{value:g}"


def review_hparams(config: dict, results: dict) -> dict[str, str]:
    """HPARAMS' three text columns, which with the test metric fill the table at 1280 px (see the
    module's docstring): what was trained, how, and on what. Text, so lr reads 5e-5, not 0.000050000."""
    run = f"{config['method']} {model_label(config['model'])}"
    if results.get("lora"):
        run += f" r={config['lora_r']}"
    name = Path(config["dataset"]).name if Path(config["dataset"]).suffix else config["dataset"].split("/")[-1]
    subset = config.get("max_train_samples")
    precision = precision_label(str(results.get("precision") or config.get("precision") or "32-true"))
    return {"1_run": run,
            "2_training": f"{short_number(config['lr'])}, {config['max_epochs']} ep, seed {config['seed']}",
            # a subset as Hugging Face slices a split, emotion[:200]: 'emotion, first 200, bf16' was cut at 157 px
            "3_data": f"{name}{f'[:{subset}]' if subset else ''}, {precision}"}


def final_metrics(results: dict) -> dict[str, float]:
    """The run's final numbers; without the test metric for a run that did not score test (a search trial)."""
    metrics = {"hp/test_task_metric": results["test"]["task_metric"]} if results["test"] else {}
    return metrics | {"hp/val_task_metric": results["val"]["task_metric"],
                      "hp/params_trainable": results["params_trainable"], "hp/fit_seconds": results["fit_seconds"],
                      "hp/cpu_latency_ms": (results.get("inference") or {}).get("latency_p50_ms", 0.0)}


def parameter_counts(total: int, trainable: int) -> dict[str, float]:
    """``params/*``: logged at step 0 when a run starts and again at its last step, a level."""
    return {"params/total": total, "params/trainable": trainable, "params/trainable_pct": 100.0 * trainable / total}


def log_levels(writer, values: dict[str, float], step: int) -> None:
    """Each value as a level: the same value at step 0 and ``step`` (see the module's docstring)."""
    for tag, value in values.items():
        for at in sorted({0, step}):
            writer.add_scalar(tag, value, at)


def log_hparams(writer, values: dict, metrics: dict, step: int) -> None:
    """The metrics as levels, and the HPARAMS row: the ``values`` columns (display names from
    ``COLUMNS``) and one metric column, the test metric (the val metric for a run that scored no test)."""
    log_levels(writer, metrics, step)
    shown = next(({tag: metrics[tag]} for tag in METRIC_NAMES if tag in metrics), dict(list(metrics.items())[:1]))
    exp, start, end = hparams_summaries(values, shown)
    data = HParamsPluginData.FromString(exp.value[0].metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.display_name = COLUMNS.get(info.name, info.name)
    for info in data.experiment.metric_infos:
        info.display_name = METRIC_NAMES.get(info.name.tag, info.name.tag)
    exp.value[0].metadata.plugin_data.content = data.SerializeToString()
    file_writer = writer._get_file_writer()
    for summary in (exp, start, end):
        file_writer.add_summary(summary)


def log_layout(writer) -> None:
    """CUSTOM SCALARS: the curves a reviewer reads first, together."""
    writer.add_custom_scalars({"review": {
        "loss: train (per epoch) vs val": ["Multiline", ["train/loss_epoch", "val/loss"]],
        "val task metric": ["Multiline", ["val/task_metric"]],
    }})


def run_card_rows(results: dict) -> list[tuple[str, str]]:
    """What the run's card in TIME SERIES says, label and value, every number from results.json."""
    inference = results.get("inference") or {}
    test = results["test"]
    config = results.get("config", {})
    data = data_label(results["dataset"], config.get("max_train_samples"))
    return [
        ("test", f"{test['task_metric']:.4f} {results['task_metric']}" if test else "not scored"),
        ("trainable", params_label(results["params_trainable"], results["trainable_pct"])),
        ("train time", f"{results['fit_seconds']:.1f} s, {results['steps']} steps"),
        ("CPU latency", latency_label(inference) if inference else "not measured"),
        ("timed on", f"batch {inference['batch_size']}x{inference['seq_len']}, {inference['threads']} threads"
         if inference else ""),
        ("backend", f"{inference.get('backend', 'torch')} {inference.get('precision', 'fp32')}" if inference else ""),
        ("load", f"{inference['load_before']:.1f} on {inference['cpus']} CPUs"
         if inference.get("load_before") is not None else "not recorded"),
        ("data", data if len(data) <= 30 else data.split("/")[-1]),
        ("precision", str(results.get("precision") or config.get("precision", "32-true"))),
    ]


def run_card_title(results: dict) -> str:
    return f"{results['method']} · {model_label(results['model'])} · seed {results['seed']}"


def run_card_figure(results: dict):
    """The card as a figure of the height of a TIME SERIES image card's box at 1280 px (215 px; it
    fits an image to that height, so a 203 px card was scaled up, blurred) and narrower than
    its width (319 px), so it is shown at its own size; text 11 px."""
    plt = _plt()
    rows = run_card_rows(results)
    height = max(2.15, 0.36 + 0.185 * len(rows))  # 9 rows: 203 px of text
    fig = plt.figure(figsize=(2.6, height), dpi=100)
    fig.text(0.03, 1 - 0.16 / height, run_card_title(results), fontsize=8.5, weight="bold", va="center")
    for i, (label, value) in enumerate(rows):
        y = 1 - (0.38 + 0.185 * i) / height
        fig.text(0.03, y, label, fontsize=8, color="#444444", va="center")
        fig.text(0.3, y, value, fontsize=8, va="center")
    return fig


def log_run_card(writer, results: dict, step: int) -> None:
    """TIME SERIES' first card for this run (tag ``compare/run``)."""
    plt = _plt()
    fig = run_card_figure(results)
    writer.add_figure("compare/run", fig, step)
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(counts: torch.Tensor, label_names: list[str]):
    """Rows: the true label, normalised to 1; columns: the predicted label."""
    plt = _plt()
    rates = counts.float() / counts.sum(dim=1, keepdim=True).clamp(min=1)
    n = len(label_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title("test confusion, rows sum to 1", fontsize=10)
    fig.tight_layout()
    return fig


def per_class_f1_figure(f1: torch.Tensor, label_names: list[str], frequency: torch.Tensor | None = None):
    """Bars of F1 per class; with ``frequency`` (multi-label), F1 against how often the label occurs."""
    plt = _plt()
    n = len(label_names)
    if frequency is None:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * n + 2), 4))
        ax.bar(range(n), f1.numpy())
        ax.set_xticks(range(n), label_names, rotation=45, ha="right")
        ax.set_ylabel("test F1")
        ax.set_ylim(0, 1)
        ax.set_title("test F1 per class")
    else:
        fig, ax = plt.subplots(figsize=(7, 5))
        ax.scatter(frequency.numpy(), f1.numpy())
        for name, x, y in zip(label_names, frequency.tolist(), f1.tolist()):
            ax.annotate(name, (x, y), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("label frequency in training data")
        ax.set_ylabel("test F1")
        ax.set_title("test F1 per label against its frequency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def log_pictures(writer, test_tensors: dict, label_names: list[str], step: int,
                 label_frequency: torch.Tensor | None = None) -> None:
    """IMAGES: the confusion matrix (single-label) and per-class F1."""
    plt = _plt()
    figures = {}
    if "confusion" in test_tensors:
        figures["test/confusion_matrix"] = confusion_figure(test_tensors["confusion"], label_names)
    if "per_class_f1" in test_tensors:
        figures["test/per_class_f1"] = per_class_f1_figure(test_tensors["per_class_f1"], label_names, label_frequency)
    for tag, fig in figures.items():
        writer.add_figure(tag, fig, step)
        plt.close(fig)


def summary_lines(results: dict) -> list[str]:
    """The one-screen summary of a finished run (printed, and TensorBoard's TEXT card)."""
    metric = results["task_metric"]
    lines = [f"run directory: {results['run_dir']}",
             f"  {results['method']} on {results['dataset']} with {results['model']} (seed {results['seed']})",
             f"  parameters: {results['params_trainable']:,} trainable of {results['params_total']:,}"
             f" ({results['trainable_pct']:.2f}%)",
             f"  training: {results['fit_seconds']:.1f} s, {results['train_samples_per_sec']:.1f} samples/s,"
             f" {results['epochs']} epochs, {results['steps']} steps, precision {results.get('precision', '32-true')}"]
    if "inference" in results:
        inf = results["inference"]
        lines.append(f"  CPU inference: {latency_label(inf)} per batch, p50 (p10-p90) of {inf.get('passes', 10)} passes;"
                     f" {measured_label(inf)} ({inf['throughput_per_s']:.0f} samples/s)")
    for split in ("val", "test"):
        scores = results[split]
        if not scores:
            lines.append(f"  {split}: not scored")
            continue
        extra = ", ".join(f"{k} {scores[k]:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1", "micro_f1")
                          if k in scores)
        lines.append(f"  {split}: {metric} {scores['task_metric']:.4f} ({extra})")
    return lines


def summary_markdown(results: dict) -> str:
    """TEXT: the run's row in the comparison table's columns, then the printed summary."""
    table = comparison_markdown(group_by_configuration([record_from_results(results, Path(results["run_dir"]))]),
                                br="<br>")
    # a list, not a code block: a block is as wide as its longest line, and widened the table past the card
    return table + "\n\n" + "\n".join(f"- {line.strip()}" for line in summary_lines(results))


def log_summary(writer, results: dict, step: int) -> None:
    writer.add_text("summary", summary_markdown(results), step)

"""What a reviewer sees of one run in TensorBoard.

- HPARAMS: only what tells runs apart (method, model, dataset, lr, epochs, seed; LoRA and
  distillation settings where they apply) with the final metrics, written once when the run
  ends. TensorBoard 2.21 sorts hyperparameters by name and opens with the first five as
  columns, so the five a comparison starts from get names that sort first ("1_method", ...)
  and display names without the rank.
- Final metrics (``hp/...``) are one point each, at the last step: nothing for smoothing to
  draw a ramp from (a placeholder 0 at step 0 once made a 0.78 run read 0.49 on screen).
- CUSTOM SCALARS: train loss against val loss, and the val task metric, side by side.
- IMAGES: the test confusion matrix (rows normalised, label names on the axes) and per-class
  F1; for multi-label data, per-label F1 against the label's training frequency.
- TEXT: the one-screen summary train.py prints.
- No ``epoch`` curve (see ``ReviewLogger``): TIME SERIES opens on the final metrics.
"""

from __future__ import annotations

import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from tweetcls_core.compare import model_label

class ReviewLogger(TensorBoardLogger):
    """TensorBoardLogger without Lightning's ``epoch`` scalar: a step counter drawn as a curve
    opened TIME SERIES (its section sorts first) and smoothing showed epoch 3 as "2.40"."""

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)


FIRST_COLUMNS = ("method", "model", "dataset", "lr", "epochs")  # the columns HPARAMS opens with
FINAL_METRICS = ("hp/val_task_metric", "hp/test_task_metric", "hp/test_accuracy", "hp/test_macro_f1",
                 "hp/fit_seconds", "hp/params_trainable", "hp/cpu_latency_ms")


def review_hparams(config: dict, results: dict) -> dict[str, object]:
    """The hyperparameters that distinguish this run from others, in review order."""
    values = {"method": config["method"], "model": model_label(config["model"]), "dataset": config["dataset"],
              "lr": config["lr"], "epochs": config["max_epochs"], "seed": config["seed"],
              "precision": results.get("precision") or config.get("precision", "32-true")}
    if results.get("lora"):
        values |= {"lora_r": config["lora_r"], "lora_alpha": config["lora_alpha"],
                   "lora_targets": config["lora_targets"], "lora_dropout": config["lora_dropout"]}
    if results.get("distill"):
        values |= {"teacher": model_label(config["teacher"]), "layers": config["layers"] or "",
                   "student": model_label(config["student"]) if config["student"] else "",
                   "kd_temperature": config["kd_temperature"], "kd_alpha": config["kd_alpha"],
                   "hidden_loss": config["hidden_loss"], "transfer_data": config["transfer_data"] or ""}
    return values


def ranked_name(name: str) -> str:
    return f"{FIRST_COLUMNS.index(name) + 1}_{name}" if name in FIRST_COLUMNS else name


def final_metrics(results: dict) -> dict[str, float]:
    """The run's final numbers; without test metrics for a run that did not score test (a search trial)."""
    test = results["test"]
    metrics = {"hp/val_task_metric": results["val"]["task_metric"]}
    if test:
        metrics |= {"hp/test_task_metric": test["task_metric"],
                    "hp/test_accuracy": test.get("accuracy", test.get("exact_match", 0.0)),
                    "hp/test_macro_f1": test["macro_f1"]}
    return metrics | {"hp/fit_seconds": results["fit_seconds"], "hp/params_trainable": results["params_trainable"],
                      "hp/cpu_latency_ms": (results.get("inference") or {}).get("latency_p50_ms", 0.0)}


def log_hparams(writer, values: dict, metrics: dict, step: int) -> None:
    """The metrics as one point each at ``step``, and the HPARAMS row (ranked names, plain display names)."""
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, step)
    exp, start, end = hparams_summaries({ranked_name(k): v for k, v in values.items()}, metrics)
    data = HParamsPluginData.FromString(exp.value[0].metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.display_name = info.name.split("_", 1)[1] if info.name[0].isdigit() else info.name
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
        lines.append(f"  CPU inference: {inf['latency_p50_ms']:.0f} ms per batch of {inf['batch_size']} x "
                     f"{inf['seq_len']} ({inf['throughput_per_s']:.0f} samples/s, {inf['threads']} threads, "
                     f"{inf.get('precision', 'fp32')})")
    for split in ("val", "test"):
        scores = results[split]
        if not scores:
            lines.append(f"  {split}: not scored")
            continue
        extra = ", ".join(f"{k} {scores[k]:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1", "micro_f1")
                          if k in scores)
        lines.append(f"  {split}: {metric} {scores['task_metric']:.4f} ({extra})")
    return lines


def log_summary(writer, results: dict, step: int) -> None:
    # four spaces: TensorBoard renders the text as Markdown, and this keeps it a block
    writer.add_text("summary", "\n".join("    " + line for line in summary_lines(results)), step)

"""Gather every run's results.json under a folder into one comparison table.

Runs that differ only in their seed form one row with mean ± sd over distinct seeds (reruns
of one seed are averaged first: they are not independent evidence). The Markdown table has
eight short columns so it reads at 1280 px in TensorBoard's TEXT tab; CSV and JSON keep every
field. It goes beside the runs and to TensorBoard (text and figure) in
``<folder>/_comparison`` next to the runs' own HPARAMS rows and TIME SERIES cards.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

from tweetcls.core.errors import UsageError
from tweetcls.core.atomic import write_text_atomic
from tweetcls.core.runs import write_json
from tweetcls.core.results_file import RESULTS_FILE, read_results


def run_record(path: Path) -> dict:
    """One row of the table from a run's results.json; a file train.py did not write is a UsageError."""
    try:
        return record_from_results(read_results(path.parent), path.parent)
    except (KeyError, TypeError, AttributeError) as err:
        raise UsageError(f"{path} lacks what train.py writes ({type(err).__name__}: {err})") from None


def record_from_results(r: dict, run_dir: Path) -> dict:
    """One row of the table from a run's results (as train.py writes them to results.json)."""
    cfg = r.get("config", {})
    info = r.get("distill") or {}
    layers = info.get("layers")
    inference = r.get("inference") or {}
    model_file = run_dir / "model" / "model.safetensors"
    return {
        "run": str(run_dir), "dataset": r["dataset"], "method": r["method"], "model": r["model"],
        "layers": ",".join(map(str, layers)) if layers else "", "pooling": r.get("pooling") or "",
        "lora": f"r={r['lora']['r']} {','.join(sorted({t.split('.')[-1] for t in r['lora']['targets']}))}" if r.get("lora") else "",
        "kd": distillation_label(info), "lr": cfg.get("lr"), "epochs": cfg.get("max_epochs"), "seed": r["seed"],
        "max_train_samples": cfg.get("max_train_samples"),
        "precision": precision_label(r.get("precision") or cfg.get("precision") or "32-true"),
        "params_total": r["params_total"], "params_trainable": r["params_trainable"],
        "trainable_pct": r["trainable_pct"], "fit_seconds": r["fit_seconds"],
        "train_samples_per_sec": r["train_samples_per_sec"],
        "size_mb": model_file.stat().st_size / 1e6 if model_file.is_file() else None,
        "latency_ms": inference.get("latency_p50_ms"), "latency_p10_ms": inference.get("latency_p10_ms"),
        "latency_p90_ms": inference.get("latency_p90_ms"), "latency_threads": inference.get("threads"),
        "latency_load": inference.get("load_before"), "latency_source": "train.py" if inference else "",
        "metric_name": r["task_metric"], "test_metric": r["test"].get("task_metric"),
        "test_accuracy": r["test"].get("accuracy"), "test_macro_f1": r["test"].get("macro_f1"),
        "val_metric": r["val"]["task_metric"],
    }


def data_label(dataset: str, max_train_samples: int | None, br: str = " ") -> str:
    """The training data as a column shows it: 'tweet_eval/emotion, all' or 'my.csv, first 500'
    (a run on a subset is not comparable with one on all of it)."""
    name = Path(dataset).name if Path(dataset).suffix else dataset
    return f"{name},{br}{'all' if not max_train_samples else f'first {max_train_samples:,}'}"


def params_label(trainable: int, pct: float, br: str = " ") -> str:
    """'7,811 (26.1%)'."""
    return f"{trainable:,}{br}({pct:.1f}%)" if pct >= 0.1 else f"{trainable:,}{br}({pct:.2g}%)"


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


GROUP_KEY = ("dataset", "method", "model", "pooling", "layers", "lora", "kd", "lr", "epochs", "precision",
             "max_train_samples")
AVERAGED = ("test_metric", "test_accuracy", "test_macro_f1", "val_metric", "fit_seconds", "train_samples_per_sec",
            "latency_ms", "latency_p10_ms", "latency_p90_ms")


def group_by_configuration(records: list[dict]) -> list[dict]:
    """One row per configuration: each value averaged over a seed's reruns, then mean and sd over
    distinct seeds (sd 0 and no ± for a single seed, however often it was run)."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault(tuple(rec[k] for k in GROUP_KEY), []).append(rec)
    rows = []
    for members in groups.values():
        row = {k: members[0][k] for k in GROUP_KEY}
        row |= {k: members[0][k] for k in ("params_total", "params_trainable", "trainable_pct", "size_mb", "metric_name",
                                           "latency_threads", "latency_source")}
        row["seeds"] = sorted({m["seed"] for m in members})
        row["runs"] = len(members)
        for key in AVERAGED:
            per_seed = [statistics.mean(values) for seed in row["seeds"]
                        if (values := [m[key] for m in members if m["seed"] == seed and m[key] is not None])]
            row[key] = statistics.mean(per_seed) if per_seed else None
            row[key + "_sd"] = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
        rows.append(row)
    return sorted(rows, key=lambda r: (r["dataset"], -(r["test_metric"] or 0)))


def _pm(row: dict, key: str, fmt: str, br: str = " ") -> str:
    if row[key] is None:
        return "—"
    text = fmt.format(row[key])
    return text + (br + "± " + fmt.format(row[key + "_sd"]) if len(row["seeds"]) > 1 else "")


def latency_cell(row: dict, br: str = " ") -> str:
    """'35 (33-40)': p50 (p10-p90) in ms, averaged over seeds; a run from before the spread was kept: p50 alone."""
    if row["latency_ms"] is None:
        return "—"
    spread = f"{br}({row['latency_p10_ms']:.0f}-{row['latency_p90_ms']:.0f})" if row.get("latency_p10_ms") is not None else ""
    return f"{row['latency_ms']:.0f}{spread}"


def comparison_markdown(rows: list[dict], br: str = " ") -> str:
    """Six short columns: the run (what sets it apart, its precision, its seeds), test metric,
    trainable parameters, training time, CPU latency, training data; a line under the table says what
    the latency is. Every other field is in the CSV and JSON. TensorBoard's TEXT tab lets a
    cell break inside a word once the table's widest lines do not fit (18 columns squeezed every
    cell to a letter a line), so for it ``br="<br>"`` puts each part of a cell on its own line."""
    metrics = {r["metric_name"] for r in rows}
    metric = metrics.pop() if len(metrics) == 1 else "metric"
    labels = row_labels(rows, br)
    lines = [f"| run | test{br}{metric} | trainable | train | CPU ms | data |", "|" + "---|" * 6]
    for r, label in zip(rows, labels):
        lines.append(
            f"| {label}{br}{r['precision']}{br}seeds {seeds_label(r)} | {_pm(r, 'test_metric', '{:.4f}', br)} "
            f"| {params_label(r['params_trainable'], r['trainable_pct'], br)} | {_pm(r, 'fit_seconds', '{:.0f}')}{' ' if br == ' ' else '&nbsp;'}s "
            f"| {latency_cell(r, br)} | {data_label(r['dataset'], r.get('max_train_samples'), br)} |")
    return "\n".join(lines) + "\n\n" + latency_note(rows)


def latency_note(rows: list[dict]) -> str:
    """What 'CPU ms' is, and who measured it."""
    threads = sorted({r.get("latency_threads") for r in rows} - {None})
    sources = sorted({r.get("latency_source") for r in rows} - {None, ""})
    if not sources:
        return "CPU ms: not measured."
    return (f"CPU ms: forward pass of a batch of 32 x 64 tokens, median (p10-p90) over 30 passes, "
            f"{'/'.join(map(str, threads)) or '?'} threads, measured by {' and '.join(sources) or 'nobody'}"
            + ("" if sources == ["evaluate.py --compare --latency"] else
               " (each run under its own load; `evaluate.py --compare RUNS --latency` times them side by side)")
            + "." + (" ± is the sd over distinct seeds." if any(len(r["seeds"]) > 1 for r in rows) else ""))


def seeds_label(row: dict) -> str:
    """The seeds a row averages ('0, 1, 2'), and where one was run again, that it was: 'seed 0, 2 runs'
    reads as one seed, not as two independent ones."""
    seeds = ", ".join(map(str, row["seeds"]))
    return seeds if row["runs"] == len(row["seeds"]) else f"{seeds} ({row['runs']} runs)"


# the files compare_runs writes into the runs folder, each known by its start (the PNG by the table beside it)
COMPARISON_STARTS = {"comparison.md": "| run |", "comparison.csv": "run,dataset,method,", "comparison.json": '{\n  "rows":'}


def check_comparison_files(folder: str | Path) -> None:
    """Refuse (one line, before any work) when the runs folder holds a comparison.md/.csv/.json/.png this
    command did not write: `evaluate.py --compare RUNS` replaced a user's own comparison.md there."""
    from tweetcls.core.outputs import first_text
    from tweetcls.core.ownership import some

    folder = Path(folder)
    theirs = [name for name, start in COMPARISON_STARTS.items()
              if (folder / name).exists() and not first_text(folder / name).startswith(start)]
    if (folder / "comparison.png").exists() and "comparison.md" in theirs:  # written with the table, or not by us
        theirs.append("comparison.png")
    if theirs:
        raise UsageError(f"{folder} holds {some(theirs)} that evaluate.py --compare did not write and would replace; "
                         "nothing was written: move them out of the runs folder, or rename them")


def compare_runs(folder: str | Path, also: list[Path] = (), latency: dict[str, dict] | None = None) -> dict:
    """The table for every run under ``folder`` (plus the run directories in ``also``); ``latency``
    (run directory -> a fresh ``cpu_latency`` measurement) replaces what train.py measured."""
    folder = Path(folder)
    check_comparison_files(folder)
    paths = sorted(folder.rglob(RESULTS_FILE)) + [Path(d) / RESULTS_FILE for d in also]
    if not paths:
        raise UsageError(f"no runs under {folder} (no {RESULTS_FILE} found); pass the --output-dir of train.py")
    records = []
    for path in paths:
        try:
            if str(read_results(path.parent).get("method", "")).startswith("mlm"):
                continue  # a masked-LM run made an encoder, not a classifier: nothing to score here
            records.append(run_record(path))
            if latency and str(path.parent) in latency:
                records[-1] |= remeasured(latency[str(path.parent)])
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


def remeasured(inference: dict) -> dict:
    """A record's latency fields from a measurement taken by ``evaluate.py --compare --latency``."""
    return {"latency_ms": inference["latency_p50_ms"], "latency_p10_ms": inference["latency_p10_ms"],
            "latency_p90_ms": inference["latency_p90_ms"], "latency_threads": inference["threads"],
            "latency_load": inference["load_before"], "latency_source": "evaluate.py --compare --latency"}


LABEL_PARTS = (lambda r: r["layers"],
               lambda r: "LoRA " + r["lora"].replace(" ", " on ", 1).replace(",", ", ") if r["lora"] else "",
               lambda r: r["kd"], lambda r: f"pooling {r['pooling']}" if r.get("pooling") else "",
               lambda r: f"lr {r['lr']:g}" if r["lr"] is not None else "",
               lambda r: f"{r['epochs']} ep" if r.get("epochs") else "")


def row_label(row: dict) -> str:
    """How a row is named in the figure: method, model, and every setting that can set it apart."""
    return " ".join(p for p in [row["method"], model_label(row["model"]), *(part(row) for part in LABEL_PARTS)] if p)


def row_labels(rows: list[dict], br: str = " ") -> list[str]:
    """How rows are named in the table: method and model, and of the other settings only those
    that differ between the rows, each on a line of its own for ``br="<br>"``."""
    varying = [part for part in LABEL_PARTS if len({part(r) for r in rows}) > 1]
    return [br.join(p.replace(" + ", f"{br}+ ").replace(" on ", f" on{br}") for p in [f"{r['method']} {model_label(r['model'])}",
                                                           *(part(r) for part in varying)] if p) for r in rows]


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


CARD_PX = (319, 215)  # a TIME SERIES image card at 1280 px fits an image into this box; IMAGES scales it to 350 wide
CARD_TAGS = ("comparison/1_metric_vs_params", "comparison/2_metric_vs_latency", "comparison/3_rows")


def card_figures(rows: list[dict]) -> dict[str, object]:
    """The comparison as three images of ``CARD_PX``, so TIME SERIES shows each at its own size (a
    1500 x 500 figure was a 319 x 106 thumbnail there, 350 x 117 in IMAGES): test metric against
    trainable parameters, against CPU latency (each row a numbered point), and what each number is."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = CARD_PX[0] / 100, CARD_PX[1] / 100
    metrics = {r["metric_name"] for r in rows}
    metric = metrics.pop() if len(metrics) == 1 else "task metric"
    figures = {}
    for tag, key, label in ((CARD_TAGS[0], "params_trainable", "trainable parameters"),
                            (CARD_TAGS[1], "latency_ms", "CPU ms per batch of 32 x 64 (p50)")):
        fig, ax = plt.subplots(figsize=(width, height), dpi=100)
        for number, r in enumerate(rows, start=1):
            if r[key] is None or r["test_metric"] is None:
                continue
            ax.errorbar(r[key], r["test_metric"], yerr=r["test_metric_sd"], fmt="o", markersize=4,
                        color=plt.get_cmap("tab10").colors[(number - 1) % 10])
            ax.annotate(str(number), (r[key], r["test_metric"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        readable_x_axis(ax, [r[key] for r in rows if r[key] is not None and r["test_metric"] is not None])
        ax.margins(x=0.15, y=0.2)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout(pad=0.4)
        figures[tag] = fig
    fig = plt.figure(figsize=(width, height), dpi=100)
    lines = []
    for number, label in enumerate(row_labels(rows), start=1):
        lines += textwrap.wrap(f"{number}. {label}", 50, subsequent_indent="    ")
    shown = lines if len(lines) <= 14 else lines[:13] + [f"... {len(rows)} rows: comparison.md"]
    fig.text(0.03, 0.97, "\n".join(shown), fontsize=8, va="top", linespacing=1.5, family="DejaVu Sans")
    figures[CARD_TAGS[2]] = fig
    return figures


def compact_number(value: float) -> str:
    """Tick labels: 800, 7.8k, 22.7M, 0.5."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def readable_x_axis(ax, values: list[float]) -> None:
    """A log axis where the values span a factor of 10 or more (LoRA's 0.1M against a full 22.7M),
    else linear; ticks at 1, 2 and 5 per decade, labelled 7.8k or 22.7M (matplotlib's log labels
    read '2 x 10^4' at a size that overlapped)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    positive = [v for v in values if v and v > 0]
    if positive and max(positive) / min(positive) >= 10:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_number(v)))


def log_comparison(rows: list[dict], log_dir: Path, markdown: str) -> None:
    """The table as text and the comparison as three card-sized images; the wide figure (all rows in
    a legend beside the plots) goes beside the table as comparison.png."""
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    fig = comparison_figure(rows)
    fig.savefig(log_dir.parent / "comparison.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    with SummaryWriter(str(log_dir)) as writer:
        writer.add_text("comparison/table", comparison_markdown(rows, br="<br>"))
        for tag, figure in card_figures(rows).items():
            writer.add_figure(tag, figure)
            plt.close(figure)

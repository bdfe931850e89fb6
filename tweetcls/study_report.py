"""A finished (or growing) Optuna study as a reviewer reads it: a table of trials, and
Optuna's own plots (optimization history, parameter importances, parallel coordinates)
as PNG files and in TensorBoard (``<study>/_study``, IMAGES and TEXT)."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

from tweetcls.core.atomic import write_text_atomic

PLOTS = ("optimization_history", "param_importances", "parallel_coordinate")


def trial_rows(study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):  # started past --trials by a second worker and stopped at once
            continue
        rows.append({"trial": t.number, "state": t.state.name, "val_metric": t.value,
                     "seconds": t.user_attrs.get("seconds"),
                     "validations": len(t.intermediate_values),
                     **{f"param_{k}": v for k, v in t.params.items()}})
    return rows


def trials_markdown(rows: list[dict]) -> str:
    params = sorted({k for r in rows for k in r if k.startswith("param_")})
    head = ["trial", "state", "val metric", "seconds", "validations", *[p.removeprefix("param_") for p in params]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["trial"]), r["state"], "—" if r["val_metric"] is None else f"{r['val_metric']:.4f}",
                 "—" if r["seconds"] is None else f"{r['seconds']:.0f}", str(r["validations"]),
                 *[_fmt(r.get(p)) for p in params]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def pruning_savings(rows: list[dict], default_epochs: int, validations_per_epoch: int = 1) -> dict:
    """What pruning saved: each pruned trial's remaining validations (its ``max_epochs``, else
    ``default_epochs``, times ``validations_per_epoch``, minus those it ran), priced at the
    median seconds per validation of the complete trials. A pruned trial's own pace would count
    its start-up (model, tokenization) again for every missing validation and flatter pruning;
    only while no trial has completed is it used."""
    spent = sum(r["seconds"] or 0 for r in rows if r["state"] in ("COMPLETE", "PRUNED"))
    paces = [r["seconds"] / r["validations"] for r in rows
             if r["state"] == "COMPLETE" and r["seconds"] and r["validations"]]
    complete_pace = statistics.median(paces) if paces else None
    saved = 0.0
    for r in rows:
        if r["state"] == "PRUNED" and r["seconds"] and r["validations"]:
            planned = (r.get("param_max_epochs") or default_epochs) * validations_per_epoch
            pace = complete_pace or r["seconds"] / r["validations"]
            saved += max(0, planned - r["validations"]) * pace
    return {"seconds": spent, "saved_seconds": saved, "without_pruning_seconds": spent + saved,
            "share_of_unpruned": spent / (spent + saved) if spent else None}


def write_study_report(study, folder: Path, default_epochs: int = 3, validations_per_epoch: int = 1) -> dict:
    """summary.md, summary.csv, one PNG per plot, and the TensorBoard run ``_study``."""
    rows = trial_rows(study)
    markdown = trials_markdown(rows)
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    savings = pruning_savings(rows, default_epochs, validations_per_epoch)
    markdown += (f"\n\n{len(rows)} trials: {sum(r['state'] == 'COMPLETE' for r in rows)} complete, {len(pruned)} "
                 f"pruned ({sum(r['seconds'] or 0 for r in pruned):.0f} s spent on them), "
                 f"{sum(r['state'] == 'FAIL' for r in rows)} failed.")
    if savings["share_of_unpruned"] is not None:
        markdown += (f" Trials took {savings['seconds']:.0f} s; run to their last epoch, the pruned ones would have "
                     f"added about {savings['saved_seconds']:.0f} s ({savings['share_of_unpruned']:.0%} of the "
                     f"unpruned time was spent).")
    write_text_atomic(folder / "summary.md", markdown + "\n")
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(folder / "summary.csv", buffer.getvalue())
    plots = _plots(study, folder)
    return {"markdown": markdown, "rows": rows, "plots": [str(p) for p in plots], "pruning": savings}


def _plots(study, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization.matplotlib as ovm
    from torch.utils.tensorboard import SummaryWriter

    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*quantiles select the same set of trials")
    written = []
    with SummaryWriter(str(folder / "_study")) as tb:
        tb.add_text("study/trials", trials_markdown(trial_rows(study)))
        for name in PLOTS:
            try:
                axes = getattr(ovm, f"plot_{name}")(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # too few complete trials for this plot yet
                continue
            ax = axes.flat[0] if hasattr(axes, "flat") else axes
            fig = ax.figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            path = folder / f"{name}.png"
            fig.savefig(path, dpi=80)
            tb.add_figure(f"study/{name}", fig)
            plt.close(fig)
            written.append(path)
    return written

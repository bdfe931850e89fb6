"""The compression ledger end to end: build, save, time and score every variant of a
model, then write the table as Markdown, CSV, JSON and to TensorBoard."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tweetcls.compress.ledger import Step, build_variant, save_variant, size_on_disk, variant_name
from tweetcls.compress.weight_counts import parameter_counts
from tweetcls.compress.ledger_report import ledger_markdown, log_to_tensorboard, write_files
from tweetcls.core.atomic import atomic_directory
from tweetcls.core.ownership import check_replaceable
from tweetcls.core.latency import measure_latency
from tweetcls.core.scoring import score_model


def run_ledger(model: nn.Module, variants: list[list[Step]], datamodule, data, split: str, threshold: float,
               stem: Path, meta: dict, threads: int = 2, latency_batch: tuple[int, int] = (32, 64),
               latency_iters: int = 20, save_variants: str | Path | None = None) -> dict:
    """Build, measure and evaluate every variant (the uncompressed ``none`` row first, for the
    deltas); write the ledger beside ``stem`` and keep each variant in ``save_variants``/NAME."""
    if not any(variant_name(v) == "none" for v in variants):
        variants = [[Step("none")], *variants]
    names = [variant_name(v) for v in variants]
    repeated = list(dict.fromkeys(name for name in names if names.count(name) > 1))
    if repeated:  # one variant, one row: 'int8,int8' or 'prune:0.5,prune:0.50' gave two rows of one variant
        print(f"  {', '.join(repeated)}: named more than once, measured once (one row each)", file=sys.stderr)
        variants = list({name: v for name, v in zip(names, variants)}.values())
    tb_dir = stem.parent / "compression" / stem.name.removeprefix("compression-")
    # every folder the ledger will replace is checked before minutes of work, not after them
    check_replaceable(tb_dir, "compression-log")
    for steps in variants if save_variants else []:
        check_replaceable(variant_folder(save_variants, steps), "variant")
    torch.set_num_threads(threads)
    batch_size, seq_len = latency_batch
    # warm the process (thread pool, allocator) so the first row is not slower for it
    measure_latency(model, model.config.vocab_size, batch_size, seq_len, iters=3)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:  # ONNX exports of the variants that need one
        for number, steps in enumerate(variants):
            name = variant_name(steps)
            variant = build_variant(model, steps, datamodule.tokenizer, Path(workdir) / f"onnx-{number}",
                                    calibration_texts=list(data.splits["train"]["text"]))
            if save_variants:
                # the folder appears whole or not at all; with the tokenizer, so train.py --model can fine-tune it
                with atomic_directory(variant_folder(save_variants, steps), "variant") as folder:
                    size = save_variant(variant, folder)
                    datamodule.tokenizer.save_pretrained(folder)
            else:
                size = size_on_disk(variant)
            row = {"variant": name, **parameter_counts(variant), "size_mb": size}
            row |= measure_latency(variant, model.config.vocab_size, batch_size, seq_len, iters=latency_iters)
            metrics = score_model(variant, datamodule, data, split, threshold, "cpu")
            row |= {"task_metric": metrics["task_metric"],
                    "accuracy": metrics.get("accuracy", metrics.get("exact_match")),
                    "macro_f1": metrics["macro_f1"]}
            rows.append(row)
            print(f"  {name}: {data.metric_name} {row['task_metric']:.4f}, {row['size_mb']:.1f} MB, "
                  f"p50 {row['latency_p50_ms']:.1f} ms", file=sys.stderr)
    baseline = next(r["task_metric"] for r in rows if r["variant"] == "none")
    for row in rows:
        row["delta"] = row["task_metric"] - baseline
    meta = meta | {"task_metric": data.metric_name, "threads": threads, "latency_batch": [batch_size, seq_len],
                   "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"}
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = write_files(rows, stem, meta)
    write_log_dir(tb_dir, lambda folder: log_to_tensorboard(rows, folder, data.metric_name, meta))
    return {"ledger": rows, "markdown": ledger_markdown(rows, data.metric_name),
            "files": [str(csv_path), str(json_path)], "tensorboard": str(tb_dir), **meta}


def variant_folder(save_variants: str | Path, steps: list[Step]) -> Path:
    return Path(save_variants) / variant_name(steps).replace(":", "_")


def write_log_dir(tb_dir: Path, write: Callable[[Path], None]) -> None:
    """The ledger's TensorBoard folder, one per ledger, rewritten whole so a re-run never doubles its
    rows: ``write`` fills a temporary folder that then replaces an earlier ledger's ``tb_dir``; a
    folder of the user's own by that name is never touched (one line). Written in place, a ledger
    stopped mid-write (Ctrl-C, SIGTERM) left event files its marker did not list, and every later
    run refused the folder as the user's."""
    with atomic_directory(tb_dir, "compression-log") as folder:
        write(folder)

"""Evaluate a trained run (or any saved classifier) on a dataset split.

    python evaluate.py runs/tweet_eval-emotion-lora-minilm-l6-s0-20261123-101500
    python evaluate.py RUN_DIR --split validation --dataset tweet_eval/emotion
    python evaluate.py path/to/saved_classifier --dataset disaster_tweets

    python evaluate.py RUN_DIR --compress none,prune:0.5,prune-structured:0.5,int8,prune-structured:0.5+int8

Loads what train.py saved in RUN_DIR/model (LoRA already merged), computes the same
metrics as training, prints them and writes RUN_DIR/eval-<dataset>-<split>.json.
With --compress it builds each compressed variant and writes the compression ledger
(parameters, size on disk, CPU latency, metric and its change) as Markdown, CSV, JSON
and to TensorBoard (RUN_DIR/compression).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from tweetcls_core.errors import StorageFull, UsageError
from tweetcls_core.quiet import quiet_libraries


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", nargs="?", help="run directory written by train.py, or a saved classifier (folder or hub id)")
    p.add_argument("--compare", metavar="RUNS_DIR", default=None,
                   help="instead: gather every results.json under RUNS_DIR into one comparison table")
    p.add_argument("--dataset", default=None, help="default: the run's dataset")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", default="test", choices=("train", "validation", "val", "test"))
    p.add_argument("--text-column", default=None)
    p.add_argument("--label-column", default=None)
    p.add_argument("--max-length", type=int, default=None, help="default: the run's --max-length, else 128")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-eval-samples", type=int, default=None)
    p.add_argument("--threshold", type=float, default=None, help="sigmoid threshold for multi-label data")
    p.add_argument("--output", default=None, help="JSON file for the metrics (default: in the run directory)")
    p.add_argument("--accelerator", default="auto")
    ledger = p.add_argument_group("compression ledger")
    ledger.add_argument("--compress", default=None, metavar="VARIANTS",
                        help="comma-separated variants, steps joined by +: none, prune:A, prune-global:A, "
                             "prune-structured:A, int8 (last)")
    ledger.add_argument("--threads", type=int, default=2, help="CPU threads for latency measurements")
    ledger.add_argument("--latency-batch-size", type=int, default=32)
    ledger.add_argument("--latency-seq-len", type=int, default=64)
    ledger.add_argument("--latency-iters", type=int, default=20)
    ledger.add_argument("--save-variants", default=None, metavar="DIR",
                        help="keep each variant's model in DIR/<variant> (fp32 ones load with from_pretrained, "
                             "so train.py --model DIR/<variant> can fine-tune them to recover)")
    return p


def check_trained_labels(trained: list[str] | None, model_dir: Path, dataset: str, data_labels: list[str]) -> None:
    """Refuse to score a head on labels it was not trained for: loading it for another label set
    would give a freshly initialised head and metrics of random weights."""
    if trained is not None and list(trained) != list(data_labels):
        raise UsageError(f"{model_dir} was trained on labels {list(trained)}, {dataset} has {list(data_labels)}; "
                         "evaluate on the dataset it was trained on (or its labels in the same order)")
    if trained is None:
        from transformers import AutoConfig

        try:
            count = AutoConfig.from_pretrained(str(model_dir)).num_labels
        except (OSError, ValueError):
            return  # load_classifier says what is wrong with the folder
        if count != len(data_labels):
            raise UsageError(f"{model_dir} has {count} outputs and no label names, {dataset} has "
                             f"{len(data_labels)} labels: it is not a classifier for this data")


def run(args: argparse.Namespace) -> dict:
    from tweetcls_core.runs import RESULTS_FILE, dataset_slug, read_results, write_json
    from datamodules import TextClassificationDataModule
    from tweetcls_core.parameters import count_parameters
    from tweetcls_core.scoring import score_model
    from tweetcls_core.build import load_classifier, load_tokenizer, trained_label_names
    from tweetcls_core.resolve import resolve_model

    variants = None
    if args.compress is not None:
        from compress.ledger import parse_variants

        variants = parse_variants(args.compress)  # a typo fails before any loading
    target = Path(args.target)
    is_run = target.is_dir() and (target / RESULTS_FILE).exists()
    if target.is_dir() and not is_run and not (target / "config.json").exists():
        raise UsageError(f"{target} holds no run (no {RESULTS_FILE}) and no saved model (no config.json)")
    saved = read_results(target) if is_run else {}
    config = saved.get("config", {})
    model_dir = target / "model" if is_run else resolve_model(args.target)
    if is_run and not (model_dir / "config.json").is_file():
        raise UsageError(f"{target} has no saved model in {model_dir}; the run did not finish")

    dataset = args.dataset or saved.get("dataset")
    if not dataset:
        raise UsageError("pass --dataset: a saved model does not say what data it was trained on")
    tokenizer = load_tokenizer(model_dir)
    datamodule = TextClassificationDataModule(
        dataset, tokenizer, data_dir=args.data_dir or config.get("data_dir"),
        max_length=args.max_length or config.get("max_length", 128),
        batch_size=args.batch_size, eval_batch_size=args.batch_size,
        max_eval_samples=args.max_eval_samples, max_train_samples=args.max_eval_samples,
        text_column=args.text_column or config.get("text_column", "text"),
        label_column=args.label_column or config.get("label_column", "label"),
    )
    data = datamodule.load()
    check_trained_labels(saved.get("label_names") or trained_label_names(model_dir), model_dir, dataset, data.label_names)
    model = load_classifier(model_dir, data.label_names, data.multi_label)
    split = {"val": "validation"}.get(args.split, args.split)
    threshold = args.threshold or saved.get("threshold") or config.get("threshold", 0.5)
    out_dir = target if is_run else Path(".")
    stem = f"{dataset_slug(dataset)}-{split}"
    if variants is not None:
        from compress.ledger_run import run_ledger

        return run_ledger(model, variants, datamodule, data, split, threshold,
                          Path(args.output).with_suffix("") if args.output else out_dir / f"compression-{stem}",
                          {"target": str(target), "model_path": str(model_dir), "dataset": dataset, "split": split},
                          threads=args.threads, latency_batch=(args.latency_batch_size, args.latency_seq_len),
                          latency_iters=args.latency_iters, save_variants=args.save_variants)

    start = time.perf_counter()
    metrics = score_model(model, datamodule, data, split, threshold, args.accelerator)
    total, _ = count_parameters(model)
    result = {
        "target": str(target), "model_path": str(model_dir), "dataset": dataset, "split": split,
        "task_metric": data.metric_name, "examples": len(datamodule.encoded[split]),
        "params_total": total, "eval_seconds": time.perf_counter() - start, "metrics": metrics,
    }
    output = Path(args.output) if args.output else (target / f"eval-{stem}.json" if is_run else None)
    if output:
        write_json(output, result)
        result["output"] = str(output)
    return result


def print_result(result: dict) -> None:
    if "ledger" in result:
        print(f"Compression ledger: {result['target']} on {result['dataset']} ({result['split']}),"
              f" latency on batch {result['latency_batch'][0]}x{result['latency_batch'][1]}, {result['threads']} threads")
        print(result["markdown"])
        print(f"written to {', '.join(result['files'])}; TensorBoard: tensorboard --logdir {result['tensorboard']}")
        return
    metrics = result["metrics"]
    print(f"{result['target']} on {result['dataset']} ({result['split']}, {result['examples']} examples,"
          f" {result['eval_seconds']:.1f} s)")
    print(f"  {result['task_metric']}: {metrics['task_metric']:.4f}")
    for key in ("accuracy", "macro_f1", "weighted_f1", "micro_f1", "exact_match"):
        if key in metrics:
            print(f"  {key}: {metrics[key]:.4f}")
    if result.get("output"):
        print(f"  written to {result['output']}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.compare:
            from tweetcls_core.compare import compare_runs

            result = compare_runs(args.compare)
            print(result["markdown"])
            print(f"written to {args.compare}/comparison.md, .csv, .json; "
                  f"TensorBoard: tensorboard --logdir {args.compare}")
            return 0
        if not args.target:
            parser.error("give a run directory or model, or --compare RUNS_DIR")
        quiet_libraries()
        for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no "GPU available" per variant
        result = run(args)
    except UsageError as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 2
    except StorageFull as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 1
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

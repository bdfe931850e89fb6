"""Evaluate a trained run (or any saved classifier) on a dataset split.

    python evaluate.py runs/tweet_eval-emotion-lora-minilm-l6-s0-20261123-101500
    python evaluate.py RUN_DIR --split validation --dataset tweet_eval/emotion
    python evaluate.py path/to/saved_classifier --dataset disaster_tweets

Loads what train.py saved in RUN_DIR/model (LoRA already merged), computes the same
metrics as training, prints them and writes RUN_DIR/eval-<dataset>-<split>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from core.errors import UsageError
from core.quiet import quiet_libraries


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", help="run directory written by train.py, or a saved classifier (folder or hub id)")
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
    return p


def run(args: argparse.Namespace) -> dict:
    import lightning as L

    from core.runs import RESULTS_FILE, dataset_slug, read_results, write_json
    from datamodules import TextClassificationDataModule
    from lora import count_parameters
    from models.build import load_classifier, load_tokenizer
    from models.classifier import TextClassifier
    from models.resolve import resolve_model

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
    model = load_classifier(model_dir, data.label_names, data.multi_label)
    trained_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if is_run and trained_labels != data.label_names:
        raise UsageError(f"the run was trained on labels {trained_labels}, {dataset} has {data.label_names}")
    module = TextClassifier(model.eval(), data.label_names, multi_label=data.multi_label, metric=data.metric,
                            metric_classes=data.metric_classes,
                            threshold=args.threshold or config.get("threshold", 0.5))
    trainer = L.Trainer(accelerator=args.accelerator, devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    start = time.perf_counter()
    scores = trainer.test(module, dataloaders=datamodule.split_dataloader(args.split), verbose=False)[0]
    seconds = time.perf_counter() - start
    split = {"val": "validation"}.get(args.split, args.split)
    total, _ = count_parameters(model)
    result = {
        "target": str(target), "model_path": str(model_dir), "dataset": dataset, "split": split,
        "task_metric": data.metric_name, "examples": len(datamodule.encoded[split]),
        "params_total": total, "eval_seconds": seconds,
        "metrics": {k.removeprefix("test/"): v for k, v in scores.items()},
    }
    output = Path(args.output) if args.output else (target / f"eval-{dataset_slug(dataset)}-{split}.json" if is_run else None)
    if output:
        write_json(output, result)
        result["output"] = str(output)
    return result


def print_result(result: dict) -> None:
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
        args = build_parser().parse_args(argv)
        quiet_libraries()
        result = run(args)
    except UsageError as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 2
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

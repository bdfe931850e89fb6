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
from dataclasses import dataclass
from pathlib import Path

from tweetcls.core.errors import REPORTED, Interrupted, UsageError, flags_of, report
from tweetcls.core.quiet import quiet_libraries
from tweetcls.core.options import (EXISTING_DIR, Encoding, NAME, OPEN_PROBABILITY, OUTPUT_DIR, OUTPUT_FILE,
                                   POSITIVE_INT, Parser, Text, program)
from tweetcls.core.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", type=Text("run directory, model folder or name"), nargs="?", help="run directory written by train.py, or a saved classifier (folder or hub id)")
    p.add_argument("--compare", type=EXISTING_DIR, metavar="RUNS_DIR", default=None,
                   help="instead: gather every results.json under RUNS_DIR into one comparison table")
    p.add_argument("--latency", action="store_true",
                   help="with --compare: time every run's CPU latency again, side by side in this process "
                        "(--threads threads), instead of the figures each train.py measured under its own load")
    p.add_argument("--dataset", type=Text("dataset name or file"), default=None, help="default: the run's dataset")
    p.add_argument("--data-dir", type=EXISTING_DIR, default=None)
    p.add_argument("--split", default="test", choices=("train", "validation", "val", "test"))
    p.add_argument("--text-column", type=NAME, default=None)
    p.add_argument("--label-column", type=NAME, default=None)
    p.add_argument("--encoding", type=Encoding(), default=None, help="text encoding of a local data file (default: the run's, else utf-8)")
    p.add_argument("--max-length", type=POSITIVE_INT, default=None, help="default: the run's --max-length, else 128")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=None,
                   help="default: the run's evaluation batch size (its scores are then reproduced exactly), else 128")
    p.add_argument("--max-eval-samples", type=POSITIVE_INT, default=None)
    p.add_argument("--threshold", type=OPEN_PROBABILITY, default=None, help="sigmoid threshold for multi-label data")
    p.add_argument("--output", type=OUTPUT_FILE, default=None, help="JSON file for the metrics (default: in the run directory)")
    p.add_argument("--accelerator", type=NAME, default="auto")
    p.add_argument("--precision", type=NAME, default=None,
                   help="32-true, bf16-mixed or auto (bf16 where the hardware has it); default: the precision the "
                        "run was trained and scored in (fp32 for a saved model)")
    ledger = p.add_argument_group("compression ledger")
    ledger.add_argument("--compress", type=Text("list of variants"), default=None, metavar="VARIANTS",
                        help="comma-separated variants, steps joined by +: none, prune:A, prune-global:A, "
                             "prune-structured:A, then at most one of bf16, int8, onnx, onnx-int8 (last)")
    ledger.add_argument("--threads", type=POSITIVE_INT, default=2, help="CPU threads for latency measurements")
    ledger.add_argument("--latency-batch-size", type=POSITIVE_INT, default=32)
    ledger.add_argument("--latency-seq-len", type=POSITIVE_INT, default=64)
    ledger.add_argument("--latency-iters", type=POSITIVE_INT, default=20)
    ledger.add_argument("--save-variants", type=OUTPUT_DIR, default=None, metavar="DIR",
                        help="keep each variant's model in DIR/<variant> (fp32 ones load with from_pretrained, "
                             "so train.py --model DIR/<variant> can fine-tune them to recover)")
    return p


@dataclass(frozen=True, kw_only=True)
class EvaluateSettings(Settings):
    """evaluate.py's settings: one field per flag (its help: python evaluate.py --help)."""

    target: str | None  # run directory or saved classifier; None only with --compare
    compare: str | None  # instead: the folder of runs to compare
    latency: bool  # with --compare: time every run again, side by side
    dataset: str | None  # None: the run's dataset
    data_dir: str | None
    split: str  # train, validation, val or test
    text_column: str | None  # None: the run's, else text
    label_column: str | None  # None: the run's, else label
    encoding: str | None  # None: the run's, else utf-8
    max_length: int | None  # None: the run's, else the model's
    batch_size: int | None  # None: the run's evaluation batch size, else 128
    max_eval_samples: int | None
    threshold: float | None  # multi-label sigmoid threshold; None: the run's, else 0.5
    output: str | None  # the metrics' JSON file; None: in the run directory
    accelerator: str
    precision: str | None  # None: the run's, else 32-true
    # the compression ledger
    compress: str | None  # comma-separated variants; None: no ledger
    threads: int  # CPU threads for latency measurements
    latency_batch_size: int
    latency_seq_len: int
    latency_iters: int
    save_variants: str | None  # folder to keep each variant's model in


def parse_args(argv: list[str] | None = None) -> EvaluateSettings:
    return EvaluateSettings.from_namespace(build_parser().parse_args(argv))


def check_args(args: EvaluateSettings) -> None:
    """What the options' declared domains (build_parser) cannot say alone."""
    if args.save_variants and Path(args.save_variants).exists() and not Path(args.save_variants).is_dir():
        raise UsageError(f"--save-variants {args.save_variants} is a file; give a folder to keep the variants in")


def check_outputs(output: Path | None, dataset: str, config: dict, ledger: bool, option: str = "--output") -> None:
    """The file(s) evaluate.py will write never replace the data scored nor a file evaluate.py did not
    write (one line, before any work): --output, and the default names too, which land in the current
    folder for a target that is not a run (a user's compression-<data>-test.csv there was replaced)."""
    from tweetcls.core.outputs import check_output_file, is_evaluation

    if output is None:
        return
    inputs = [dataset, config.get("val_file"), config.get("test_file")]
    if not ledger:
        check_output_file(output, option, inputs, is_evaluation, "evaluate.py")
        return
    stem = Path(output).with_suffix("")
    check_output_file(stem.with_suffix(".json"), option, inputs, is_evaluation, "evaluate.py")
    check_output_file(stem.with_suffix(".csv"), f"{option} (its .csv)", inputs,
                      lambda start: start.startswith("variant,"), "evaluate.py")


def is_run_dataset(given: str, trained: str | None) -> bool:
    """``--dataset`` names the file the run trained on (by any path): it is then scored with the run's own
    --val-file/--test-file. Dropping them made the "test" split 10% of the training file, rows the
    model had trained on, and the score looked like a test score."""
    from tweetcls.core.outputs import same_file

    return trained is not None and (given == trained or same_file(given, trained))


def check_trained_labels(run, dataset: str, data) -> None:
    """Refuse to score a head on labels it was not trained for: its outputs would be read as
    another task's classes (or, loaded for another label set, come from a fresh random head)."""
    from tweetcls.core.build import placeholder_labels

    placeholder = placeholder_labels(run.label_names)
    if placeholder and len(run.label_names) != len(data.label_names):
        raise UsageError(f"{run.path} has {len(run.label_names)} outputs and no label names, {dataset} has "
                         f"{len(data.label_names)} labels: it is not a classifier for this data")
    if not placeholder and run.label_names != list(data.label_names):
        raise UsageError(f"{run.path} was trained on labels {run.label_names}, {dataset} has {list(data.label_names)}; "
                         "evaluate on the dataset it was trained on (or its labels in the same order)")
    if run.multi_label != data.multi_label:
        kind = "multi-label" if run.multi_label else "single-label"
        raise UsageError(f"{run.path} is a {kind} classifier and {dataset} is not {kind} data")


def run(args: EvaluateSettings) -> dict:
    from tweetcls.datamodules import TextClassificationDataModule
    from tweetcls.loader import load_run
    from tweetcls.core.build import max_model_length
    from tweetcls.core.parameters import count_parameters
    from tweetcls.core.runs import dataset_slug, write_json
    from tweetcls.core.precision import resolve_precision
    from tweetcls.core.scoring import score_model

    check_args(args)
    variants = None
    if args.compress is not None:
        from tweetcls.compress.ledger import parse_variants

        variants = parse_variants(args.compress)  # a typo fails before any loading
    # a LoRA run is scored as training scored it, adapter apart from its base (the ledger compresses model/)
    loaded = load_run(args.target, merged=variants is not None)
    config = loaded.results.get("config", {})
    batch_size = args.batch_size or config.get("eval_batch_size") or config.get("batch_size") or 128
    dataset = args.dataset or loaded.results.get("dataset")
    own_data = args.dataset is None or is_run_dataset(args.dataset, loaded.results.get("dataset"))
    if not dataset:
        raise UsageError("pass --dataset: a saved model does not say what data it was trained on")
    split = {"val": "validation"}.get(args.split, args.split)
    target = Path(args.target)
    out_dir = target if loaded.kind == "run" else Path(".")
    stem = f"{dataset_slug(dataset)}-{split}"
    if args.output:
        output, option = Path(args.output), "--output"
    elif variants is not None:
        output, option = out_dir / f"compression-{stem}.json", "the default --output"
    else:
        output, option = (target / f"eval-{stem}.json" if loaded.kind == "run" else None), "the default --output"
    check_outputs(output, dataset, config, variants is not None, option)
    if own_data:
        from tweetcls.core.data_files import check_data_files

        check_data_files(loaded.run_dir, {"--dataset": dataset, "--val-file": config.get("val_file"),
                                          "--test-file": config.get("test_file")},
                         "its held-out rows are not the ones the run held out, so the score would count rows the "
                         "model trained on", "restore the file, or score new rows given as a file of their own "
                         "(--dataset NEW.csv)")
    max_eval_samples = args.max_eval_samples
    if max_eval_samples is None and own_data and config.get("max_eval_samples") and split != "train":
        # the run scored only its first N held-out rows: the same rows give results.json's number
        max_eval_samples = config["max_eval_samples"]
        print(f"scoring the first {max_eval_samples} {split} examples, as the run did (its --max-eval-samples); "
              "pass --max-eval-samples to score another number", file=sys.stderr)
    datamodule = TextClassificationDataModule(
        dataset, loaded.tokenizer, data_dir=args.data_dir or config.get("data_dir"),
        max_length=args.max_length if args.max_length is not None else loaded.max_length,
        batch_size=batch_size, eval_batch_size=batch_size,
        max_eval_samples=max_eval_samples,
        max_train_samples=args.max_eval_samples if args.split == "train" else None,
        text_column=args.text_column or config.get("text_column", "text"),
        label_column=args.label_column or config.get("label_column", "label"),
        encoding=args.encoding or config.get("encoding", "utf-8"),
        # the run's own validation/test files, when it is scored on its own data
        val_file=config.get("val_file") if own_data else None, test_file=config.get("test_file") if own_data else None,
    )
    data = datamodule.load()
    check_trained_labels(loaded, dataset, data)
    model = loaded.model
    limit = max_model_length(model, loaded.tokenizer)
    if datamodule.max_length > limit:
        raise UsageError(f"--max-length {datamodule.max_length} exceeds what the model accepts ({limit})")
    if variants is not None and args.latency_seq_len > limit:
        raise UsageError(f"--latency-seq-len {args.latency_seq_len} exceeds what the model accepts ({limit})")
    threshold = next(t for t in (args.threshold, loaded.threshold, config.get("threshold"), 0.5) if t is not None)
    meta = {"target": str(target), "model_path": str(loaded.path), "dataset": dataset, "split": split}
    if variants is not None:
        from tweetcls.compress.ledger_run import run_ledger

        return run_ledger(model, variants, datamodule, data, split, threshold,
                          output.with_suffix(""),
                          meta, threads=args.threads, latency_batch=(args.latency_batch_size, args.latency_seq_len),
                          latency_iters=args.latency_iters, save_variants=args.save_variants)

    start = time.perf_counter()
    precision = resolve_precision(args.precision or loaded.results.get("precision") or config.get("precision") or "32-true",
                                  args.accelerator)
    metrics = score_model(model, datamodule, data, split, threshold, args.accelerator, precision)
    total, _ = count_parameters(model)
    result = meta | {"precision": precision,
        "task_metric": data.metric_name, "examples": len(datamodule.encoded[split]),
        "params_total": total, "eval_seconds": time.perf_counter() - start, "metrics": metrics,
    }
    if output:
        write_json(output, result)
        result["output"] = str(output)
    return result


def remeasure_latency(folder: str, threads: int) -> dict[str, dict]:
    """Every finished classifier run under ``folder`` timed again, side by side (run directory -> measurement)."""
    import torch

    from tweetcls.loader import load_run
    from tweetcls.core.latency import side_by_side
    from tweetcls.core.results_file import RESULTS_FILE, read_results

    torch.set_num_threads(threads)
    models = {}
    for path in sorted(Path(folder).rglob(RESULTS_FILE)):
        results = read_results(path.parent)
        if str(results.get("method", "")).startswith("mlm") or not (path.parent / "model").is_dir():
            continue
        models[str(path.parent)] = (load_run(path.parent).model, results.get("precision") or "32-true")
    return side_by_side(models)


def print_result(result: dict) -> None:
    if "ledger" in result:
        print(f"Compression ledger: {result['target']} on {result['dataset']} ({result['split']}),"
              f" latency on batch {result['latency_batch'][0]}x{result['latency_batch'][1]}, {result['threads']} threads")
        print(result["markdown"])
        print(f"written to {', '.join(result['files'])}; TensorBoard: tensorboard --logdir {result['tensorboard']}")
        return
    metrics = result["metrics"]
    print(f"{result['target']} on {result['dataset']} ({result['split']}, {result['examples']} examples, {result['precision']},"
          f" {result['eval_seconds']:.1f} s)")
    print(f"  {result['task_metric']}: {metrics['task_metric']:.4f}")
    for key in ("accuracy", "macro_f1", "weighted_f1", "micro_f1", "exact_match", "top_label_accuracy"):
        if key in metrics:
            print(f"  {key}: {metrics[key]:.4f}")
    if result.get("output"):
        print(f"  written to {result['output']}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
        if args.compare:
            from tweetcls.review.compare import check_comparison_files, compare_runs

            check_comparison_files(args.compare)  # before --latency's minutes of timing

            quiet_libraries()
            result = compare_runs(args.compare, latency=remeasure_latency(args.compare, args.threads)
                                  if args.latency else None)
            print(result["markdown"])
            print(f"written to {args.compare}/comparison.md, .csv, .json; "
                  f"TensorBoard: tensorboard --logdir {args.compare}")
            return 0
        if args.latency:
            raise UsageError("--latency goes with --compare RUNS_DIR")
        if not args.target:
            raise UsageError("give a run directory or model, or --compare RUNS_DIR")
        quiet_libraries()
        for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)  # no "GPU available" per variant
        result = run(args)
    except REPORTED as err:  # bad input, a full disk, any OSError: one line with the path
        return report(program("evaluate.py"), err, flags_of(build_parser()))
    except Interrupted as err:  # SIGTERM or Ctrl-C while Lightning scored
        print(f"{program('evaluate.py')}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:  # every file it writes appears whole or not at all
        print(f"{program('evaluate.py')}: interrupted; nothing half-written was left (saved variants are whole)",
              file=sys.stderr)
        return 130
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

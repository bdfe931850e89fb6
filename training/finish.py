"""What train.py does after fitting: scores val and test with the best checkpoint (a multi-label
threshold chosen on val first), fits the calibration temperature, saves adapter/ and model/,
logs the final HPARAMS and pictures once, writes results.json last (it marks a finished run),
and prints the summary."""

from __future__ import annotations

import time
from pathlib import Path

from tweetcls.training.options import Method
from tweetcls.training.settings import TrainSettings


def score(args: TrainSettings, trainer, module, datamodule, data, best: str | None) -> tuple[dict, dict, dict]:
    """(val, test, threshold tuning) of the best checkpoint; a multi-label threshold is chosen on val first."""
    tuning = {}
    if data.multi_label and args.tune_threshold:
        tuning = tune_threshold_on_val(trainer, module, datamodule, data, best)
    # the re-check of the best checkpoint and test go to results.json and hp/*, not to the val/ and test/
    # curves (a repeat of val's last point one step later, and single points drawn off the chart)
    logger = trainer.logger
    logger.muted = ("val/", "test/") if hasattr(logger, "muted") else ()
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    if not args.test:
        return {k.removeprefix("val/"): v for k, v in val.items()}, {}, tuning
    test = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    return ({k.removeprefix("val/"): v for k, v in val.items()}, {k.removeprefix("test/"): v for k, v in test.items()},
            tuning)


def calibrate(trainer, module, datamodule, best: str | None) -> dict:
    """Temperature scaling fitted on val's logits, with ECE on test before and after
    (core/calibration.py); predictions and metrics are unchanged by it."""
    import torch

    from tweetcls.core.calibration import calibration_report

    def logits_and_labels(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = trainer.predict(module, dataloaders=datamodule.split_dataloader(split), ckpt_path=best,
                                  weights_only=True)
        return torch.cat([o["logits"] for o in outputs]).float(), torch.cat([o["labels"] for o in outputs])

    return calibration_report(logits_and_labels("validation"), logits_and_labels("test"))


def export(args: TrainSettings, method: Method, model, tokenizer, run_dir: Path, results: dict,
           started: float | None = None) -> None:
    """adapter/ (LoRA) and model/ (plain fp32, LoRA merged), each whole or not at all, the CPU
    latency, and the command's wall time since ``started``; results.json follows later
    (``mark_finished``)."""
    from tweetcls.core.atomic import atomic_directory
    from tweetcls.review.hub_card import CARD_FILE, model_card
    from tweetcls.core.latency import cpu_latency
    from tweetcls.core.saved_model import save_classifier
    from tweetcls.core.runs import environment

    # the decision rule travels with every saved form (model/, int8 variants, ONNX)
    if results["multi_label"]:
        model.config.multi_label_threshold = results["threshold"]
    if results["calibration"]:
        model.config.calibration_temperature = results["calibration"]["temperature"]
    if method.adapters:
        from tweetcls.lora import merge_lora, save_adapter

        if not args.layers:  # a layer-copied student's base exists only inside the run: model/ holds it merged
            with atomic_directory(run_dir / "adapter", "adapter") as folder:
                save_adapter(model, folder, extra={
                    "base_model": args.model, "base_model_path": results["model_path"], "method": args.method,
                    "label_names": results["label_names"], "multi_label": results["multi_label"],
                    "pooling": results["pooling"], "threshold": results["threshold"],
                    "temperature": (results["calibration"] or {}).get("temperature")})
        merge_lora(model)
    if method.int8_base:  # the saved model is plain fp32: dequantized base + update
        from tweetcls.compress.int8_base import dequantize_linears

        dequantize_linears(model)
    with atomic_directory(run_dir / "model", "model") as folder:  # what plain transformers loads, with its model card
        save_classifier(model, folder, tokenizer)
        (folder / CARD_FILE).write_text(model_card(results, "transformers", str(run_dir / "model")))
    results["inference"] = cpu_latency(model, args.precision)
    results["environment"] = environment()
    if started is not None:  # the whole command, options and hardware checks included (resumed: since the resume)
        results["wall_seconds"] = time.time() - started


def mark_finished(run_dir: Path, results: dict) -> None:
    """results.json, written last of all the run's files (after the model folders and the flushed
    TensorBoard events): its presence is what "finished" means to --resume, so a full disk or a
    file-size limit before it leaves a run that --resume completes, never one called finished
    with its events cut short."""
    from tweetcls.core.results_file import write_results

    write_results(run_dir, results)


def log_run_end(trainer, results: dict, test_tensors: dict, data) -> None:
    """The run's card (TIME SERIES' first screen), HPARAMS with the final metrics, the test pictures and
    the summary, once (review/tensorboard.py)."""
    import torch

    from tweetcls.review.tensorboard import (final_metrics, log_hparams, log_pictures, log_run_card, log_summary,
                                      parameter_counts, review_hparams)

    writer, step = trainer.logger.experiment, trainer.global_step
    for tag, value in parameter_counts(results["params_total"], results["params_trainable"]).items():
        writer.add_scalar(tag, value, step)  # the level's end (its start: log_run_start, step 0)
    log_run_card(writer, results, step)
    log_hparams(writer, review_hparams(results["config"], results), final_metrics(results), step)
    frequency = torch.tensor(data.splits["train"]["label"]).float().mean(dim=0) if data.multi_label else None
    log_pictures(writer, test_tensors, data.label_names, step, frequency)
    log_summary(writer, results, step)
    trainer.logger.finalize("success")


def tune_threshold_on_val(trainer, module, datamodule, data, best: str | None) -> dict:
    """Set the module's multi-label threshold to the one with the best val metric."""
    import torch

    from tweetcls.core.threshold import tune_threshold

    outputs = trainer.predict(module, dataloaders=datamodule.val_dataloader(), ckpt_path=best, weights_only=True)
    probs = torch.cat([o["probs"] for o in outputs]).float().cpu()
    labels = torch.cat([o["labels"] for o in outputs]).cpu()
    threshold, scores = tune_threshold(probs, labels, data.label_names, data.metric, data.metric_classes)
    threshold = trainer.strategy.broadcast(threshold)  # under DDP, rank 0's choice for every rank
    module.set_threshold(threshold)
    return {"split": "validation", "chosen": threshold, "val_metric_by_threshold": {str(k): v for k, v in scores.items()}}


def print_summary(results: dict) -> None:
    from tweetcls.review.tensorboard import summary_lines

    print("\n" + "\n".join(summary_lines(results)))
    print(f"  TensorBoard: tensorboard --logdir {Path(results['run_dir']).parent}")

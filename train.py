"""Fine-tune a transformer encoder for short-text classification.

    python train.py --method lora                        # LoRA on TweetEval emotion, MiniLM-L6
    python train.py --method full --dataset tweet_eval/hate --lr 5e-5
    python train.py --config configs/lora_emotion.yaml --seed 1

Each run gets its own directory under --output-dir with TensorBoard events, the best
checkpoint (adapter-only for LoRA), the model in save_pretrained form (LoRA merged in),
and results.json. Mistakes in the input end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import yaml

from core.errors import Interrupted, StorageFull, TrainingDiverged, UsageError
from core.quiet import quiet_libraries

METHODS = ("full", "lora", "qlora", "teacher", "distill")
DEFAULT_LR = {"full": 5e-5, "lora": 5e-4, "qlora": 5e-4, "teacher": 3e-5, "distill": 5e-5}
DEFAULT_MODEL = {"teacher": "mpnet-base"}  # every other method: minilm-l6


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="YAML file of option values (keys as the flags, - or _); flags on the command line win")
    p.add_argument("--method", choices=METHODS, default="lora",
                   help="full: all weights; lora: LoRA adapters + head; qlora: the same on a base stored in int8; "
                        "teacher: full fine-tuning of the teacher (default model mpnet-base); "
                        "distill: train a student with the teacher's soft labels")
    p.add_argument("--model", default=None,
                   help="short name (minilm-l6, mpnet-base), Hugging Face hub id, or local folder (default: minilm-l6)")
    p.add_argument("--pooling", choices=("auto", "cls", "mean"), default="auto",
                   help="what the classifier reads: the first token, or the masked mean of all tokens; auto: what "
                        "the checkpoint was trained with (mean for sentence-transformers models such as MiniLM)")
    p.add_argument("--dataset", default="tweet_eval/emotion", help="named dataset or a .csv/.tsv/.json/.jsonl file")
    p.add_argument("--data-dir", default=None, help="folder with the offline datasets (default: $TWEETCLS_DATA_DIR, else ../shared/data)")
    p.add_argument("--text-column", default="text", help="text column of a local data file")
    p.add_argument("--label-column", default="label", help="label column of a local data file")
    p.add_argument("--max-length", type=int, default=128, help="truncate inputs to this many tokens")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=128)
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs decide)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 5e-4 for lora, 5e-5 for full)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.06, help="linear warm-up over this fraction of steps, then linear decay")
    p.add_argument("--patience", type=int, default=3, help="early stopping after this many epochs without a better val metric (0: off)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="sigmoid threshold for multi-label data (during training; see --tune-threshold)")
    p.add_argument("--tune-threshold", action=argparse.BooleanOptionalAction, default=True,
                   help="multi-label data: after training, pick the threshold with the best val metric "
                        "and report val and test with it")
    p.add_argument("--head-bias", choices=("prior", "zero"), default="prior",
                   help="multi-label data: start each label's output bias at its training frequency "
                        "(prior) or at 0 as Hugging Face does (zero; learns far slower, see models/prior_bias.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast-dropout", action=argparse.BooleanOptionalAction, default=True,
                   help="dropout masks from 15-bit uniforms, about half the cost of torch's on CPU (see lora/dropout.py)")
    p.add_argument("--max-train-samples", type=int, default=None, help="train on a fixed subset of this size")
    p.add_argument("--max-eval-samples", type=int, default=None, help="validate and test on fixed subsets of this size")
    lora = p.add_argument_group("LoRA")
    lora.add_argument("--lora-r", type=int, default=8)
    lora.add_argument("--lora-alpha", type=float, default=16.0)
    lora.add_argument("--lora-dropout", type=float, default=0.1)
    lora.add_argument("--lora-targets", default="all-linear",
                      help="comma-separated linear layer names (suffix match, e.g. query,value), or all-linear "
                           "(default: every linear layer of the encoder)")
    lora.add_argument("--lora-rslora", action="store_true", help="scale by alpha/sqrt(r) instead of alpha/r")
    kd = p.add_argument_group("distillation (--method distill)")
    kd.add_argument("--teacher", default=None, help="the teacher: a train.py run directory or a fine-tuned classifier")
    kd.add_argument("--layers", default=None,
                    help="student = these teacher blocks: odd, even (1-based: 1,3,..,11 / 2,4,..,12), distilbert, "
                         "bottom, top, uniform, or 0-based indices like 0,3,6,9")
    kd.add_argument("--student", default=None, help="an independent pretrained student instead (e.g. minilm-l6)")
    kd.add_argument("--kd-temperature", type=float, default=2.0)
    kd.add_argument("--kd-alpha", type=float, default=0.5, help="weight of the soft (teacher) term; 1-alpha for labels")
    kd.add_argument("--hidden-loss", choices=("none", "cosine", "mse"), default="none",
                    help="also match the student's last hidden states to the teacher's, tokens aligned by "
                         "character offsets (the teacher then runs every step)")
    kd.add_argument("--hidden-weight", type=float, default=1.0, help="weight of the hidden-state loss")
    kd.add_argument("--transfer-data", default=None,
                    help="unlabelled texts the student also learns from, through the teacher's soft labels only: "
                         "a .txt file (one per line) or a dataset name whose train split is used (e.g. tweet_eval/emoji); "
                         "texts of the training task itself are left out")
    kd.add_argument("--transfer-samples", type=int, default=None, help="use at most this many transfer texts")
    out = p.add_argument_group("output")
    out.add_argument("--output-dir", default="runs")
    out.add_argument("--run-name", default=None, help="default: <dataset>-<method>-<model>-s<seed>-<time>")
    out.add_argument("--overwrite", action="store_true", help="replace an existing run directory of the same name")
    out.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue an interrupted run from RUN_DIR/checkpoints/last.ckpt with its saved options")
    out.add_argument("--checkpoint-every-n-steps", type=int, default=50,
                     help="also write last.ckpt every N optimizer steps (it is always written at epoch end)")
    out.add_argument("--progress-bar", action=argparse.BooleanOptionalAction, default=True)
    scale = p.add_argument_group("hardware (passed to lightning.Trainer)")
    scale.add_argument("--accelerator", default="auto")
    scale.add_argument("--devices", default="auto")
    scale.add_argument("--strategy", default="auto")
    scale.add_argument("--num-nodes", type=int, default=1)
    scale.add_argument("--precision", default="32-true")
    scale.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags, with defaults taken from --config when one is given."""
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.resume:
        saved = Path(pre.resume) / "config.yaml"
        if not saved.is_file():
            raise UsageError(f"{pre.resume} holds no run to resume (no config.yaml); pass a run directory")
        # the run's own options, so the resumed run trains exactly as the first one did
        parser.set_defaults(**load_config(str(saved), parser))
    elif pre.config:
        parser.set_defaults(**load_config(pre.config, parser))
    args = parser.parse_args(argv)
    if args.resume:
        args.output_dir, args.run_name = str(Path(args.resume).parent), Path(args.resume).name
    check_args(args)
    return args


def load_config(path: str, parser: argparse.ArgumentParser) -> dict:
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found") from None
    except yaml.YAMLError as err:
        raise UsageError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must be a mapping of option: value")
    known = {a.dest for a in parser._actions}
    config = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(config) - known - {"config"})
    if unknown:
        raise UsageError(f"config file {path}: unknown option(s) {', '.join(unknown)}; see python train.py --help")
    if config.get("method") not in (None, *METHODS):
        raise UsageError(f"config file {path}: method must be one of {', '.join(METHODS)}")
    return config


def check_args(args: argparse.Namespace) -> None:
    if args.lr is None:
        args.lr = DEFAULT_LR[args.method]
    if args.method == "distill":
        if not args.teacher:
            raise UsageError("--method distill needs --teacher RUN_DIR_OR_MODEL")
        if bool(args.layers) == bool(args.student):
            raise UsageError("--method distill needs exactly one of --layers (copy teacher blocks) or --student MODEL")
        if not args.kd_temperature > 0 or not 0 <= args.kd_alpha <= 1:
            raise UsageError(f"--kd-temperature must be > 0 and --kd-alpha in [0, 1], "
                             f"got {args.kd_temperature} and {args.kd_alpha}")
        if args.transfer_data and args.kd_alpha == 0:
            raise UsageError("--transfer-data texts have no labels, only the teacher's: use --kd-alpha > 0")
        if args.transfer_samples is not None and args.transfer_samples <= 0:
            raise UsageError(f"--transfer-samples must be > 0, got {args.transfer_samples}")
        args.model = args.model or args.student or f"{Path(args.teacher.rstrip('/')).name}-{args.layers}"
    elif args.teacher or args.layers or args.student or args.hidden_loss != "none" or args.transfer_data:
        raise UsageError("--teacher, --layers, --student, --hidden-loss and --transfer-data belong to --method distill")
    args.model = args.model or DEFAULT_MODEL.get(args.method, "minilm-l6")
    checks = [
        (args.lr > 0, f"--lr must be > 0, got {args.lr}"),
        (args.max_epochs > 0, f"--max-epochs must be > 0, got {args.max_epochs}"),
        (args.max_steps == -1 or args.max_steps > 0, f"--max-steps must be > 0 or -1, got {args.max_steps}"),
        (0 <= args.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {args.warmup_ratio}"),
        (0 < args.threshold < 1, f"--threshold must be in (0, 1), got {args.threshold}"),
        (args.patience >= 0, f"--patience must be >= 0, got {args.patience}"),
        (args.eval_batch_size > 0, f"--eval-batch-size must be > 0, got {args.eval_batch_size}"),
        (args.checkpoint_every_n_steps > 0,
         f"--checkpoint-every-n-steps must be > 0, got {args.checkpoint_every_n_steps}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


RUN_DIR_ENV = "TWEETCLS_RUN_DIR"


def checkpoint_to_resume(run_dir: Path) -> str:
    """RUN_DIR/checkpoints/last.ckpt, checked to be whole and free of pickled code."""
    from core.checkpoint_io import load_checkpoint_safely
    from core.runs import RESULTS_FILE

    if (run_dir / RESULTS_FILE).exists():
        raise UsageError(f"{run_dir} already finished ({RESULTS_FILE} exists); nothing to resume")
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise UsageError(f"{run_dir} has no checkpoints/last.ckpt yet; start the run again instead")
    load_checkpoint_safely(last)
    return str(last)


def is_ddp_child() -> bool:
    """A rank Lightning started by re-running this command; rank 0 made the run directory."""
    return bool(os.environ.get(RUN_DIR_ENV)) and int(os.environ.get("LOCAL_RANK", "0")) > 0


def run(args: argparse.Namespace, extra_callbacks: list | None = None) -> dict:
    """Train, test and save one run, holding its directory's lock; returns what results.json holds.

    Under DDP, Lightning starts the other local ranks by re-running this command; they
    find the run directory rank 0 made (and locked) in $TWEETCLS_RUN_DIR instead.
    """
    from core.run_lock import LOCK_FILE, RunLock
    from core.runs import check_run_name, dataset_slug, timestamp

    if is_ddp_child():
        return train_and_save(args, extra_callbacks)
    if args.resume:
        run_dir = Path(args.resume)
    else:
        model_slug = Path(str(args.model).rstrip("/")).name
        args.run_name = args.run_name or f"{dataset_slug(args.dataset)}-{args.method}-{model_slug}-s{args.seed}-{timestamp()}"
        check_run_name(args.run_name)
        run_dir = Path(args.output_dir) / args.run_name
    created = run_dir  # the outermost folder the lock creates (--output-dir may be new too)
    while not created.parent.exists():
        created = created.parent
    created = None if created.exists() else created
    lock = RunLock(run_dir).acquire()
    try:
        return train_and_save(args, extra_callbacks)
    finally:
        lock.release()
        if created is not None and run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(created)  # failed before writing anything: leave no empty run behind


def train_and_save(args: argparse.Namespace, extra_callbacks: list | None = None) -> dict:
    """The run itself (see ``run``)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from core.checkpoint_io import AtomicCheckpointIO
    from core.last_checkpoint import LastCheckpoint
    from core.atomic import atomic_directory, storage_error, write_text_atomic
    from core.runs import check_run_dir, environment, new_run_dir, write_json
    from core.timing import TrainingClock
    from datamodules import TextClassificationDataModule
    from lora import count_parameters, inject_lora, mark_only_lora_as_trainable, merge_lora, save_adapter
    from models.build import load_classifier, load_tokenizer, max_model_length
    from models.classifier import TextClassifier
    from models.resolve import resolve_model

    run_name = args.run_name
    if not args.resume and not is_ddp_child():
        check_run_dir(args.output_dir, run_name, args.overwrite)

    L.seed_everything(args.seed, workers=True, verbose=False)
    if args.method == "distill":
        from distill.student import build_student, teacher_model_dir

        teacher_dir = teacher_model_dir(args.teacher)
        student_dir = resolve_model(args.student) if args.student else None
        model_dir = student_dir or teacher_dir  # a layer-copied student keeps the teacher's tokenizer
    else:
        model_dir = resolve_model(args.model)
    tokenizer = load_tokenizer(model_dir)
    datamodule = TextClassificationDataModule(
        args.dataset, tokenizer, data_dir=args.data_dir, max_length=args.max_length,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, seed=args.seed,
        max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples,
        text_column=args.text_column, label_column=args.label_column, num_workers=args.num_workers,
    )
    data = datamodule.load()
    distill_info = {}
    if args.method == "distill":
        model, teacher_model, distill_info = build_student(teacher_dir, data.label_names, data.multi_label,
                                                           args.layers, student_dir, args.pooling)
    else:
        model = load_classifier(model_dir, data.label_names, data.multi_label, args.pooling)
    if data.multi_label and args.head_bias == "prior" and not args.resume:
        import torch

        from models.prior_bias import init_bias_to_label_prior

        init_bias_to_label_prior(model, torch.tensor(data.splits["train"]["label"]))
    limit = max_model_length(model, tokenizer)
    if args.max_length > limit:
        raise UsageError(f"--max-length {args.max_length} exceeds what {args.model} accepts ({limit})")

    lora_info = {}
    if args.method in ("lora", "qlora"):
        targets = args.lora_targets.split(",") if args.lora_targets else None
        wrapped = inject_lora(model, targets, r=args.lora_r, alpha=args.lora_alpha,
                              dropout=args.lora_dropout, use_rslora=args.lora_rslora)
        mark_only_lora_as_trainable(model)
        lora_info = {"targets": wrapped, "r": args.lora_r, "alpha": args.lora_alpha,
                     "dropout": args.lora_dropout, "rslora": args.lora_rslora}
        if args.method == "qlora":
            from compress.int8_base import quantize_frozen_linears

            lora_info["int8_base_layers"] = len(quantize_frozen_linears(model))
    if args.fast_dropout:
        from lora.dropout import use_fast_dropout

        use_fast_dropout(model)
    total, trainable = count_parameters(model)
    if args.method == "distill":
        from distill.teacher_cache import cached_teacher_logits

        datamodule.setup()
        if args.transfer_data:
            from distill.transfer_set import transfer_texts

            own = {text for split in data.splits.values() for text in split["text"]}
            extra = transfer_texts(args.transfer_data, args.data_dir, args.transfer_samples, exclude=own)
            datamodule.add_unlabelled_train_texts(extra)
            distill_info["transfer"] = {"data": args.transfer_data, "texts": len(extra)}
        logits, cache = cached_teacher_logits(teacher_dir, datamodule.texts["train"], data.label_names,
                                              args.max_length)
        datamodule.add_train_column("teacher_logits", logits)
        distill_info |= {"temperature": args.kd_temperature, "alpha": args.kd_alpha, "teacher_logits_cache": str(cache),
                         "hidden_loss": args.hidden_loss, "hidden_weight": args.hidden_weight}
        if args.hidden_loss != "none":
            from distill.hidden_collator import AlignedDistillationCollator

            datamodule.keep_train_texts(AlignedDistillationCollator(tokenizer, load_tokenizer(teacher_dir), args.max_length))

    resume_from = None
    if is_ddp_child():
        run_dir = Path(os.environ[RUN_DIR_ENV])
    elif args.resume:
        run_dir = Path(args.resume)
        resume_from = checkpoint_to_resume(run_dir)
    else:
        run_dir = new_run_dir(args.output_dir, run_name, args.overwrite)
        write_text_atomic(run_dir / "config.yaml", yaml.safe_dump({**vars(args), "run_name": run_dir.name}, sort_keys=False))
    run_dir = run_dir.resolve()  # Lightning reports checkpoint paths absolute
    os.environ[RUN_DIR_ENV] = str(run_dir)

    module = TextClassifier(
        model, data.label_names, multi_label=data.multi_label, metric=data.metric,
        metric_classes=data.metric_classes, lr=args.lr, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, threshold=args.threshold,
        adapter_only_checkpoints=args.method in ("lora", "qlora"),
        kd_alpha=args.kd_alpha if args.method == "distill" else None, kd_temperature=args.kd_temperature,
        teacher=teacher_model if args.method == "distill" and args.hidden_loss != "none" else None,
        hidden_loss=None if args.hidden_loss == "none" else args.hidden_loss, hidden_weight=args.hidden_weight,
    )
    logger = TensorBoardLogger(save_dir=run_dir.parent, name=run_dir.name, version="", default_hp_metric=False)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best-{epoch}-{step}",
                                 monitor="val/task_metric", mode="max", save_top_k=1)
    last = LastCheckpoint(run_dir / "checkpoints" / "last.ckpt", args.checkpoint_every_n_steps)
    clock = TrainingClock()
    callbacks = [checkpoint, last, clock, LearningRateMonitor(logging_interval="step"), *(extra_callbacks or [])]
    if args.patience:
        callbacks.append(EarlyStopping(monitor="val/task_metric", mode="max", patience=args.patience,
                                       check_on_train_epoch_end=False))
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    trainer = L.Trainer(
        max_epochs=args.max_epochs, max_steps=args.max_steps, accelerator=args.accelerator,
        devices=devices, strategy=args.strategy, num_nodes=args.num_nodes, precision=args.precision,
        logger=logger, callbacks=callbacks, log_every_n_steps=10,
        enable_progress_bar=args.progress_bar, enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
    )

    hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items()}
    hparams |= {"params_total": total, "params_trainable": trainable, "task_metric": data.metric_name}
    if distill_info:
        hparams |= {"teacher": distill_info["teacher"], "student_layers": str(distill_info["layers"]),
                    "teacher_params": distill_info["teacher_params"],
                    "student_to_teacher_params": distill_info["student_to_teacher_params"]}
    final_keys = ["hp/val_task_metric", "hp/test_task_metric", "hp/test_accuracy", "hp/test_macro_f1",
                  "hp/fit_seconds", "hp/params_trainable"]
    if resume_from is None:  # a resumed run continues the TensorBoard run it already has
        logger.log_hyperparams(hparams, {k: 0.0 for k in final_keys})
        logger.log_metrics({"params/total": total, "params/trainable": trainable,
                            "params/trainable_pct": 100.0 * trainable / total}, step=0)

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except TrainingDiverged as err:
        kept = f"the last good checkpoint is {last.path}" if Path(last.path).exists() else "no checkpoint was written yet"
        raise TrainingDiverged(f"{err}; {kept}; lower --lr (now {args.lr})") from None
    except SystemExit as stop:  # Lightning turns SIGTERM and Ctrl-C into SystemExit (code 0 for SIGTERM)
        raise interrupted(stop, trainer, run_dir, last.path) from None
    except OSError as err:
        raise storage_error(err, run_dir / "checkpoints") from None
    best = checkpoint.best_model_path or None
    tuning = {}
    if data.multi_label and args.tune_threshold:
        tuning = tune_threshold_on_val(trainer, module, datamodule, data, best)
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    test = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    val = {k.removeprefix("val/"): v for k, v in val.items()}
    test = {k.removeprefix("test/"): v for k, v in test.items()}

    results = {
        "method": args.method, "model": args.model, "model_path": str(model_dir),
        "dataset": args.dataset, "seed": args.seed, "task_metric": data.metric_name,
        "label_names": data.label_names, "multi_label": data.multi_label, "pooling": model.config.pooling,
        "params_total": total, "params_trainable": trainable,
        "trainable_pct": 100.0 * trainable / total,
        "fit_seconds": clock.fit_seconds, "train_samples_per_sec": clock.samples_per_second,
        "epochs": trainer.current_epoch, "steps": trainer.global_step,
        "best_checkpoint": str(Path(best).relative_to(run_dir)) if best else None,
        "head_bias": args.head_bias if data.multi_label else None,
        "threshold": module.hparams.threshold if data.multi_label else None, "threshold_tuning": tuning,
        "val": val, "test": test, "lora": lora_info, "distill": distill_info, "run_dir": str(run_dir),
        "config": vars(args), "environment": environment(),
    }
    if trainer.is_global_zero:
        # each folder appears whole or not at all; results.json, written last, marks a finished run
        if args.method in ("lora", "qlora"):
            with atomic_directory(run_dir / "adapter") as folder:
                save_adapter(module.model, folder, extra={"base_model": args.model, "method": args.method})
            merge_lora(module.model)
            if args.method == "qlora":  # the saved model is plain fp32: dequantized base + update
                from compress.int8_base import dequantize_linears

                dequantize_linears(module.model)
        with atomic_directory(run_dir / "model") as folder:
            module.model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        results["inference"] = cpu_latency(module.model)
        write_json(run_dir / "results.json", results)
        logger.log_metrics({"hp/val_task_metric": val["task_metric"], "hp/test_task_metric": test["task_metric"],
                            "hp/test_accuracy": test.get("accuracy", test.get("exact_match", 0.0)),
                            "hp/test_macro_f1": test["macro_f1"], "hp/fit_seconds": clock.fit_seconds,
                            "hp/params_trainable": trainable}, step=trainer.global_step)
        logger.finalize("success")
    return results


def interrupted(stop: SystemExit, trainer, run_dir: Path, last_checkpoint: str) -> Interrupted:
    """SIGTERM (a scheduler, ``kill``, ``docker stop``) or Ctrl-C during fit, as one line with the way on."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    by_sigterm = isinstance(stop, SIGTERMException)
    kept = (f"continue with: python train.py --resume {run_dir}" if Path(last_checkpoint).exists()
            else "no checkpoint was written yet; start the run again")
    return Interrupted(f"{'stopped by SIGTERM' if by_sigterm else 'interrupted'} at step {trainer.global_step}; {kept}",
                       143 if by_sigterm else 130)


def tune_threshold_on_val(trainer, module, datamodule, data, best: str | None) -> dict:
    """Set the module's multi-label threshold to the one with the best val metric."""
    import torch

    from models.threshold import tune_threshold

    outputs = trainer.predict(module, dataloaders=datamodule.val_dataloader(), ckpt_path=best, weights_only=True)
    probs = torch.cat([o["probs"] for o in outputs]).float().cpu()
    labels = torch.cat([o["labels"] for o in outputs]).cpu()
    threshold, scores = tune_threshold(probs, labels, data.label_names, data.metric, data.metric_classes)
    threshold = trainer.strategy.broadcast(threshold)  # under DDP, rank 0's choice for every rank
    module.set_threshold(threshold)
    return {"split": "validation", "chosen": threshold, "val_metric_by_threshold": {str(k): v for k, v in scores.items()}}


def cpu_latency(model) -> dict:
    """Forward latency of the saved model on the CPU (batch 32 x 64 random tokens), for comparisons."""
    import torch

    from compress.ledger import measure_latency

    with torch.inference_mode():
        latency = measure_latency(model.cpu(), model.config.vocab_size, warmup=2, iters=10)
    return latency | {"batch_size": 32, "seq_len": 64, "threads": torch.get_num_threads()}


def print_summary(results: dict) -> None:
    metric = results["task_metric"]
    print(f"\nrun directory: {results['run_dir']}")
    print(f"  {results['method']} on {results['dataset']} with {results['model']} (seed {results['seed']})")
    print(f"  parameters: {results['params_trainable']:,} trainable of {results['params_total']:,}"
          f" ({results['trainable_pct']:.2f}%)")
    print(f"  training: {results['fit_seconds']:.1f} s, {results['train_samples_per_sec']:.1f} samples/s,"
          f" {results['epochs']} epochs, {results['steps']} steps")
    if "inference" in results:
        inf = results["inference"]
        print(f"  CPU inference: {inf['latency_p50_ms']:.0f} ms per batch of {inf['batch_size']} x {inf['seq_len']}"
              f" ({inf['throughput_per_s']:.0f} samples/s, {inf['threads']} threads)")
    for split in ("val", "test"):
        scores = results[split]
        extra = ", ".join(f"{k} {scores[k]:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1", "micro_f1") if k in scores)
        print(f"  {split}: {metric} {scores['task_metric']:.4f} ({extra})")
    print(f"  TensorBoard: tensorboard --logdir {Path(results['run_dir']).parent}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
        quiet_libraries()
        results = run(args)
    except UsageError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    except (TrainingDiverged, StorageFull) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    except Interrupted as err:
        print(f"train.py: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("train.py: interrupted before training started; nothing to resume", file=sys.stderr)
        return 130
    if results and Path(results["run_dir"], "results.json").exists():
        print_summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One training run, phase by phase: what `tweetcls train` (train.py), tune and pretrain share.

The file reads top to bottom by phase: resolve the models, load the data, build the model,
apply the method, open the run directory, make the module and the trainer, fit; the options
are in training/options.py and what follows the fit (scoring, calibration, saving, the
summary) in training/finish.py. The command line around it is commands/train.py.
"""

from __future__ import annotations

import math
import time
import os
import shutil
import sys
from pathlib import Path

from tweetcls.core.errors import Interrupted, TrainingDiverged, UsageError, lightning_interruptions
from tweetcls.training.finish import calibrate, export, log_run_end, mark_finished, score
from tweetcls.training.options import METHODS, Method
from tweetcls.training.settings import RunSettings, TrainSettings


RUN_DIR_ENV = "TWEETCLS_RUN_DIR"


def checkpoint_to_resume(run_dir: Path, options: dict | None = None) -> str:
    """RUN_DIR/checkpoints/last.ckpt, checked to be whole and free of pickled code, and (``options``: the
    run's options as config.yaml gives them now) to have been trained with those options."""
    from tweetcls.training.checkpoint_io import load_checkpoint_safely
    from tweetcls.core.results_file import RESULTS_FILE

    if (run_dir / RESULTS_FILE).exists():
        raise UsageError(f"{run_dir} already finished ({RESULTS_FILE} exists); nothing to resume")
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise UsageError(f"{run_dir} has no checkpoints/last.ckpt yet; start the run again instead")
    saved = load_checkpoint_safely(last).get("hyper_parameters") or {}
    for key in sorted(set(saved) & set(options or {})):
        # config.yaml edited by hand (lr 0.005 -> 0.01): the optimizer and schedule came back from the checkpoint,
        # training went on at the old lr, and results.json recorded the new one
        if isinstance(saved[key], (int, float, str, bool, type(None))) and saved[key] != options[key]:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{run_dir / 'config.yaml'} says {flag} {options[key]}, but the run's checkpoint was "
                             f"trained with {saved[key]}: config.yaml was changed since the run started; restore it, "
                             "or start a new run (another --run-name) with the new value")
    return str(last)


def is_ddp_child() -> bool:
    """A rank Lightning started by re-running this command; rank 0 made the run directory."""
    return bool(os.environ.get(RUN_DIR_ENV)) and int(os.environ.get("LOCAL_RANK", "0")) > 0


def run(args: RunSettings, extra_callbacks: list | None = None, body=None, started: float | None = None) -> dict:
    """Train, test and save one run, holding its directory's lock; returns what results.json holds.
    ``body(args, extra_callbacks, started)`` is the run itself (default: ``train_and_save``;
    pretrain.py's own); ``started`` (time.time() when the command began, default now) gives
    results.json's ``wall_seconds``.

    Under DDP, Lightning starts the other local ranks by re-running this command; they
    find the run directory rank 0 made (and locked) in $TWEETCLS_RUN_DIR instead.
    """
    from tweetcls.core.ownership import owner_kind
    from tweetcls.core.run_lock import LOCK_FILE, RunLock
    from tweetcls.core.runs import check_run_name, dataset_slug, timestamp

    body = body or train_and_save
    started = time.time() if started is None else started
    if is_ddp_child():
        return body(args, extra_callbacks, started)
    if args.resume:
        run_dir = Path(args.resume)
    else:
        if not args.run_name:  # (pretrain.py names its runs itself)
            model_slug = Path(str(args.model).rstrip("/")).name
            args = args.replace(run_name=f"{dataset_slug(args.dataset)}-{args.method}-{model_slug}-s{args.seed}-{timestamp()}")
        check_run_name(args.run_name)
        run_dir = Path(args.output_dir) / args.run_name
    created = run_dir  # the outermost folder the lock creates (--output-dir may be new too)
    while not created.parent.exists():
        created = created.parent
    created = None if created.exists() else created
    lock_is_new = not (run_dir / LOCK_FILE).exists()
    lock = RunLock(run_dir).acquire()
    try:
        return body(args, extra_callbacks, started)
    finally:
        lock.release()
        if created is not None and run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(created)  # failed before writing anything: leave no empty run behind
        elif lock_is_new and owner_kind(run_dir) != "run":
            (run_dir / LOCK_FILE).unlink(missing_ok=True)  # a refused folder of the user's keeps no file of ours


def train_and_save(args: TrainSettings, extra_callbacks: list | None = None, started: float | None = None) -> dict:
    """The run itself, phase by phase (see ``run``)."""
    import lightning as L

    from tweetcls.core.runs import check_run_dir

    method = METHODS[args.method]
    if not args.resume and not is_ddp_child():
        check_run_dir(args.output_dir, args.run_name, args.overwrite)  # before any slow work
    elif args.resume:
        from tweetcls.core.data_files import check_data_files

        check_data_files(Path(args.resume), data_file_options(args),
                         "resuming would go on training on other rows than the run began with (its held-out rows "
                         "among them)", "restore the file, or start a new run on it (another --run-name)")
    L.seed_everything(args.seed, workers=True, verbose=False)
    model_dir, teacher_dirs = resolve_model_dirs(args)
    teacher_dir = teacher_dirs[0] if teacher_dirs else None
    tokenizer, datamodule, data = load_data(args, model_dir)
    model, teacher, info = build_model(args, model_dir, teacher_dir, data, tokenizer)
    info |= apply_method(args, method, model)
    if method.distill:
        from tweetcls.distill.data import prepare_distillation_data
        from tweetcls.core.precision import run_device

        info["distill"] |= prepare_distillation_data(datamodule, teacher_dirs, args.transfer_data,
                                                     args.transfer_samples, hidden_loss=args.hidden_loss != "none",
                                                     precision=args.precision, device=run_device(args.accelerator),
                                                     encoding=args.encoding)
    run_dir, resume_from = open_run_dir(args)
    module = make_module(args, method, model, teacher, data)
    trainer, best_checkpoint, last_checkpoint, clock = make_trainer(args, run_dir, extra_callbacks,
                                                                    val_check_interval=args.val_check_interval)
    if resume_from is None:  # a resumed run continues the TensorBoard run it already has
        log_run_start(trainer.logger, info)
    fit(trainer, module, datamodule, resume_from, run_dir, last_checkpoint.path, args.lr)
    best = best_checkpoint.best_model_path or None
    with lightning_interruptions(trainer, "scoring the trained model", f"continue with: python train.py --resume {run_dir}"):
        val, test, tuning = score(args, trainer, module, datamodule, data, best)
        calibration = {} if data.multi_label or not args.test else calibrate(trainer, module, datamodule, best)
    results = {
        "method": args.method, "model": args.model, "model_path": str(model_dir),
        "dataset": args.dataset, "seed": args.seed, "task_metric": data.metric_name,
        "label_names": data.label_names, "multi_label": data.multi_label, "pooling": model.config.pooling,
        "params_total": info["params_total"], "params_trainable": info["params_trainable"],
        "trainable_pct": 100.0 * info["params_trainable"] / info["params_total"],
        "fit_seconds": clock.fit_seconds, "train_step_seconds": clock.step_seconds,
        "train_samples_per_sec": clock.samples_per_second,
        "epochs": trainer.current_epoch, "steps": trainer.global_step,
        "best_checkpoint": str(Path(best).relative_to(run_dir)) if best else None,
        "head_bias": args.head_bias if data.multi_label else None,
        "threshold": module.hparams.threshold if data.multi_label else None, "threshold_tuning": tuning,
        "calibration": calibration,
        "val": val, "test": test,
        "eval_examples": {s: len(datamodule.encoded[s]) for s in ("validation", "test") if s in datamodule.encoded},
        "lora": info["lora"], "distill": info["distill"], "run_dir": str(run_dir),
        "precision": args.precision, "config": args.as_dict(),
    }
    if module.test_tensors.get("confusion") is not None:
        results["test"]["confusion_matrix"] = module.test_tensors["confusion"].tolist()  # true label by row
    if trainer.is_global_zero:
        export(args, method, module.model, tokenizer, run_dir, results, started)
        try:
            log_run_end(trainer, results, module.test_tensors, data)  # flushes and closes the event file
        except OSError as err:
            from tweetcls.core.atomic import storage_error

            raise storage_error(err, run_dir) from None
        mark_finished(run_dir, results)  # last: a run is finished only when all its files are written
    return results


def resolve_model_dirs(args: TrainSettings) -> tuple[Path, list[Path]]:
    """(folder of the model to train, folders of the teachers: none, one, or an ensemble given as
    comma-separated --teacher). A layer-copied student keeps its teacher's tokenizer, so its model
    folder is the teacher's."""
    from tweetcls.core.resolve import resolve_model

    if not METHODS[args.method].distill:
        return resolve_model(args.model), []
    from tweetcls.distill.student import teacher_model_dir

    teacher_dirs = [teacher_model_dir(t.strip()) for t in args.teacher.split(",")]
    return (resolve_model(args.student) if args.student else teacher_dirs[0]), teacher_dirs


def load_data(args: TrainSettings, model_dir: Path):
    """(tokenizer, datamodule, raw labelled data); the splits are read, not yet tokenized."""
    from tweetcls.datamodules import TextClassificationDataModule
    from tweetcls.core.build import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    datamodule = TextClassificationDataModule(
        args.dataset, tokenizer, data_dir=args.data_dir, max_length=args.max_length,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, seed=args.seed,
        max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples,
        text_column=args.text_column, label_column=args.label_column, num_workers=args.num_workers,
        encoding=args.encoding, val_file=args.val_file, test_file=args.test_file,
    )
    return tokenizer, datamodule, datamodule.load()


def build_model(args: TrainSettings, model_dir: Path, teacher_dir: Path | None, data, tokenizer):
    """(model with a head for the data's labels, teacher or None, info). Multi-label heads start
    at the label priors (training/prior_bias.py)."""
    import torch

    from tweetcls.core.build import load_classifier, max_model_length

    teacher, distill_info = None, {}
    if teacher_dir is not None:
        from tweetcls.distill.student import build_student

        model, teacher, distill_info = build_student(teacher_dir, data.label_names, data.multi_label, args.layers,
                                                     model_dir if args.student else None, args.pooling)
        distill_info |= {"temperature": args.kd_temperature, "alpha": args.kd_alpha,
                         "hidden_loss": args.hidden_loss, "hidden_weight": args.hidden_weight}
    else:
        model = load_classifier(model_dir, data.label_names, data.multi_label, args.pooling)
    if data.multi_label and args.head_bias == "prior" and not args.resume:
        from tweetcls.training.prior_bias import init_bias_to_label_prior

        init_bias_to_label_prior(model, torch.tensor(data.splits["train"]["label"]))
    limit = max_model_length(model, tokenizer)
    if args.max_length > limit:
        raise UsageError(f"--max-length {args.max_length} exceeds what {args.model} accepts ({limit})")
    return model, teacher, {"distill": distill_info}


def apply_method(args: TrainSettings, method: Method, model) -> dict:
    """Make only what the method trains trainable (LoRA adapters, an int8 base), swap in the
    fast dropout; returns the method's record and the parameter counts."""
    from tweetcls.core.parameters import count_parameters

    lora_info = {}
    if method.adapters:
        from tweetcls.lora import inject_lora, mark_only_lora_as_trainable

        targets = args.lora_targets.split(",") if args.lora_targets else None
        width = getattr(model.config, "hidden_size", None)  # every encoder linear is at least this narrow
        if width and args.lora_r > width:  # r = 2e9 asked torch for a 256 GB matrix
            raise UsageError(f"--lora-r {args.lora_r} exceeds the width of {args.model}'s layers ({width}): a rank "
                             f"above it adds parameters, not capacity; use --lora-r {width} or less")
        wrapped = inject_lora(model, targets, r=args.lora_r, alpha=args.lora_alpha,
                              dropout=args.lora_dropout, use_rslora=args.lora_rslora)
        mark_only_lora_as_trainable(model)
        lora_info = {"targets": wrapped, "r": args.lora_r, "alpha": args.lora_alpha,
                     "dropout": args.lora_dropout, "rslora": args.lora_rslora}
    if method.int8_base:
        from tweetcls.compress.int8_base import quantize_frozen_linears

        lora_info["int8_base_layers"] = len(quantize_frozen_linears(model))
    if args.fast_dropout:
        from tweetcls.core.dropout import use_fast_dropout

        use_fast_dropout(model)
    total, trainable = count_parameters(model)
    return {"lora": lora_info, "params_total": total, "params_trainable": trainable}


def data_file_options(args: RunSettings) -> dict[str, str | None]:
    """The data files a run reads, by option (what core/data_files.py records and checks)."""
    return {option: getattr(args, option[2:].replace("-", "_"), None)  # (pretrain.py's runs have none of them)
            for option in ("--dataset", "--val-file", "--test-file")}


def open_run_dir(args: RunSettings) -> tuple[Path, str | None]:
    """(absolute run directory, checkpoint to resume from or None): a new run gets a fresh directory
    with its config.yaml; a DDP rank > 0 finds rank 0's."""
    import yaml

    from tweetcls.core.atomic import write_text_atomic
    from tweetcls.core.data_files import record_data_files
    from tweetcls.core.runs import new_run_dir

    resume_from = None
    if is_ddp_child():
        run_dir = Path(os.environ[RUN_DIR_ENV])
    elif args.resume:
        run_dir = Path(args.resume)
        resume_from = checkpoint_to_resume(run_dir, args.as_dict())
    else:
        run_dir = new_run_dir(args.output_dir, args.run_name, args.overwrite)
        write_text_atomic(run_dir / "config.yaml", yaml.safe_dump({**args.as_dict(), "run_name": run_dir.name},
                                                                  sort_keys=False))
        record_data_files(run_dir, data_file_options(args))
    run_dir = run_dir.resolve()  # Lightning reports checkpoint paths absolute
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir, resume_from


def make_module(args: TrainSettings, method: Method, model, teacher, data):
    """The LightningModule: the classifier, or distillation's subclass with its loss terms."""
    from tweetcls.core.classifier import TextClassifier

    options = dict(multi_label=data.multi_label, metric=data.metric, metric_classes=data.metric_classes,
                   lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                   threshold=args.threshold, adapter_only_checkpoints=method.adapters)
    if not method.distill:
        return TextClassifier(model, data.label_names, **options)
    from tweetcls.distill.module import DistillationClassifier

    hidden = args.hidden_loss != "none"
    return DistillationClassifier(model, data.label_names, kd_alpha=args.kd_alpha, kd_temperature=args.kd_temperature,
                                  teacher=teacher if hidden else None, hidden_loss=args.hidden_loss if hidden else None,
                                  hidden_weight=args.hidden_weight, **options)


def make_trainer(args: RunSettings, run_dir: Path, extra_callbacks: list | None,
                 monitor: tuple[str, str] = ("val/task_metric", "max"), val_check_interval: float = 1.0):
    """(Trainer, best-checkpoint callback, last-checkpoint callback, clock): TensorBoard, the best
    checkpoint by ``monitor`` (metric, max|min), validation every ``val_check_interval`` of an
    epoch, last.ckpt for --resume, early stopping, atomic checkpoint writes."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from tweetcls.training.checkpoint_io import AtomicCheckpointIO
    from tweetcls.training.last_checkpoint import LastCheckpoint
    from tweetcls.review.tensorboard import ReviewLogger
    from tweetcls.training.timing import TrainingClock

    logger = ReviewLogger(save_dir=run_dir.parent, name=run_dir.name, version="", default_hp_metric=False)
    metric, mode = monitor
    best = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best-{epoch}-{step}",
                           monitor=metric, mode=mode, save_top_k=1)
    last = LastCheckpoint(run_dir / "checkpoints" / "last.ckpt", args.checkpoint_every_n_steps)
    clock = TrainingClock()
    callbacks = [best, last, clock, LearningRateMonitor(logging_interval="step"), *(extra_callbacks or [])]
    interval = val_check_interval
    if args.patience:  # EarlyStopping counts validations: --patience epochs of them
        callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=validations_in(args.patience, interval),
                                       check_on_train_epoch_end=False))
    from tweetcls.training.hardware import rendezvous_line, trainer_strategy

    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    trainer = L.Trainer(
        max_epochs=args.max_epochs, max_steps=args.max_steps, accelerator=args.accelerator,
        devices=devices, strategy=trainer_strategy(args), num_nodes=args.num_nodes, precision=args.precision,
        logger=logger, callbacks=callbacks, log_every_n_steps=10,
        enable_progress_bar=args.progress_bar, enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        # passed only when set: Lightning announces an explicit 1.0 on every run
        **({"val_check_interval": interval} if interval != 1.0 else {}),
    )
    waits = rendezvous_line(args)
    if waits and not is_ddp_child():
        print(waits, file=sys.stderr)
    return trainer, best, last, clock


def validations_in(epochs: int, val_check_interval: float) -> int:
    """How many validations ``epochs`` epochs hold, validating ``val_check_interval`` of an epoch apart."""
    return math.ceil(epochs / val_check_interval - 1e-9)


def log_run_start(logger, info: dict) -> None:
    """Parameter counts and the review layout, once, at the start of a new run (the hyperparameters
    go in with the final metrics at the end: see review/tensorboard.py)."""
    from tweetcls.review.tensorboard import log_layout, parameter_counts

    logger.log_metrics(parameter_counts(info["params_total"], info["params_trainable"]), step=0)  # the level's start
    log_layout(logger.experiment)


def fit(trainer, module, datamodule, resume_from: str | None, run_dir: Path, last_checkpoint: str, lr: float,
        program: str = "train.py") -> None:
    """``trainer.fit``, with a diverged loss, a signal or a full disk each told as one line."""
    from tweetcls.core.atomic import storage_error

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except TrainingDiverged as err:
        kept = f"the last good checkpoint is {last_checkpoint}" if Path(last_checkpoint).exists() \
            else "no checkpoint was written yet"
        raise TrainingDiverged(f"{err}; {kept}; lower --lr (now {lr})") from None
    except SystemExit as stop:  # Lightning turns SIGTERM and Ctrl-C into SystemExit (code 0 for SIGTERM)
        raise interrupted(stop, trainer, run_dir, last_checkpoint, program) from None
    except OSError as err:
        raise storage_error(err, run_dir / "checkpoints") from None
    except RuntimeError as err:
        import torch.distributed

        if not isinstance(err, torch.distributed.DistError):
            raise
        nodes = trainer.num_nodes
        if resume_from is None and not is_ddp_child():
            discard_untrained_run(run_dir)  # nothing was trained: a rerun finds no run in its way
        raise TimeoutError(f"--num-nodes {nodes}: not all nodes joined at {os.environ.get('MASTER_ADDR')}:"
                           f"{os.environ.get('MASTER_PORT')} ({' '.join(str(err).split())[:160]}); start {program} "
                           f"on every node with NODE_RANK 0..{nodes - 1}, then run the same command again") from None


def discard_untrained_run(run_dir: Path) -> None:
    """Empty a run this process just made (its marker proves it, and it holds only our files)
    but never trained, keeping the lock; ``run`` then removes the folder it created."""
    from tweetcls.core.ownership import owner_kind
    from tweetcls.core.runs import RUN_ENTRIES, empty_run_dir, foreign_entries, foreign_inside

    if owner_kind(run_dir) != "run" or foreign_entries(run_dir, RUN_ENTRIES) or foreign_inside(run_dir):
        return
    empty_run_dir(run_dir)


def interrupted(stop: SystemExit, trainer, run_dir: Path, last_checkpoint: str, program: str = "train.py") -> Interrupted:
    """SIGTERM (a scheduler, ``kill``, ``docker stop``) or Ctrl-C during fit, as one line with the way on."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    by_sigterm = isinstance(stop, SIGTERMException)
    kept = (f"continue with: python {program} --resume {run_dir}" if Path(last_checkpoint).exists()
            else "no checkpoint was written yet; start the run again")
    return Interrupted(f"{'stopped by SIGTERM' if by_sigterm else 'interrupted'} at step {trainer.global_step}; {kept}",
                       143 if by_sigterm else 130)

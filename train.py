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
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tweetcls_core.errors import Interrupted, StorageFull, TrainingDiverged, UsageError, report
from tweetcls_core.quiet import quiet_libraries
from tweetcls_core.options import (EXISTING_DIR, EXISTING_FILE, Encoding, FRACTION, NAME, NON_NEGATIVE_FLOAT,
                                   NON_NEGATIVE_INT, Number, OPEN_PROBABILITY, OUTPUT_DIR, POSITIVE_FLOAT, POSITIVE_INT,
                                   PROBABILITY, Parser, SEED, STEPS_OR_ALL, Text, check_value)

COMMAND_STARTED: list[float] = []  # set by main(): results.json's wall_seconds of the whole command

@dataclass(frozen=True)
class Method:
    """What a training method changes; adding a method is one row of METHODS."""

    lr: float  # default peak learning rate
    help: str
    model: str = "minilm-l6"  # default --model
    adapters: bool = False  # LoRA: adapter-only checkpoints, adapter/ saved, merged into model/
    int8_base: bool = False  # the frozen base stored in int8 under the adapters (QLoRA-style)
    distill: bool = False  # a student learning from --teacher's soft labels


METHODS = {
    "full": Method(5e-5, "all weights"),
    "lora": Method(5e-4, "LoRA adapters + head", adapters=True),
    "qlora": Method(5e-4, "the same on a base stored in int8", adapters=True, int8_base=True),
    "teacher": Method(3e-5, "full fine-tuning of the teacher", model="mpnet-base"),
    "distill": Method(5e-5, "train a student with the teacher's soft labels", distill=True),
    "distill-lora": Method(5e-4, "the same through LoRA adapters + head (e.g. on the teacher's odd layers)",
                           adapters=True, distill=True),
}
POOLINGS = ("auto", "cls", "mean")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", type=EXISTING_FILE, help="YAML file of option values (keys as the flags, - or _); flags on the command line win")
    p.add_argument("--method", choices=list(METHODS), default="lora",
                   help="; ".join(f"{name}: {m.help}" for name, m in METHODS.items()))
    p.add_argument("--model", type=Text("model name or folder"), default=None,
                   help="short name (minilm-l6, mpnet-base), Hugging Face hub id, or local folder (default: minilm-l6)")
    p.add_argument("--pooling", choices=POOLINGS, default="auto",
                   help="what the classifier reads: the first token, or the masked mean of all tokens; auto: what "
                        "the checkpoint was trained with (mean for sentence-transformers models such as MiniLM)")
    p.add_argument("--dataset", type=Text("dataset name or file"), default="tweet_eval/emotion", help="named dataset or a .csv/.tsv/.json/.jsonl file")
    p.add_argument("--val-file", type=EXISTING_FILE, default=None,
                   help="your own validation split for a --dataset file (same columns); else 10%% of that file")
    p.add_argument("--test-file", type=EXISTING_FILE, default=None,
                   help="your own test split for a --dataset file (same columns); else 10%% of that file")
    p.add_argument("--data-dir", type=EXISTING_DIR, default=None, help="folder with the offline datasets (default: $TWEETCLS_DATA_DIR, else ../shared/data)")
    p.add_argument("--text-column", type=NAME, default="text", help="text column of a local data file")
    p.add_argument("--label-column", type=NAME, default="label", help="label column of a local data file")
    p.add_argument("--encoding", type=Encoding(), default="utf-8", help="text encoding of a local data file (e.g. latin-1, cp1252)")
    p.add_argument("--max-length", type=POSITIVE_INT, default=128, help="truncate inputs to this many tokens")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=32)
    p.add_argument("--eval-batch-size", type=POSITIVE_INT, default=128)
    p.add_argument("--max-epochs", type=POSITIVE_INT, default=3)
    p.add_argument("--max-steps", type=STEPS_OR_ALL, default=-1, help="stop after this many optimizer steps (-1: epochs decide)")
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=None, help="peak learning rate (default: 5e-4 for lora, 5e-5 for full)")
    p.add_argument("--weight-decay", type=NON_NEGATIVE_FLOAT, default=0.01)
    p.add_argument("--warmup-ratio", type=FRACTION, default=0.06, help="linear warm-up over this fraction of steps, then linear decay")
    p.add_argument("--patience", type=NON_NEGATIVE_INT, default=3, help="early stopping after this many epochs without a better val metric (0: off)")
    p.add_argument("--val-check-interval", type=Number(float, 0, 1, low_open=True), default=1.0,
                   help="validate this fraction of an epoch apart (0.25: four times an epoch), so that the best "
                        "checkpoint and a search's pruning can act within an epoch; --patience stays in epochs")
    p.add_argument("--threshold", type=OPEN_PROBABILITY, default=0.5,
                   help="sigmoid threshold for multi-label data (during training; see --tune-threshold)")
    p.add_argument("--tune-threshold", action=argparse.BooleanOptionalAction, default=True,
                   help="multi-label data: after training, pick the threshold with the best val metric "
                        "and report val and test with it")
    p.add_argument("--head-bias", choices=("prior", "zero"), default="prior",
                   help="multi-label data: start each label's output bias at its training frequency "
                        "(prior) or at 0 as Hugging Face does (zero; learns far slower, see tweetcls_core/prior_bias.py)")
    p.add_argument("--test", action=argparse.BooleanOptionalAction, default=True,
                   help="score the test split when training ends (tune.py turns it off: a search never scores test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--fast-dropout", action=argparse.BooleanOptionalAction, default=True,
                   help="dropout masks from 15-bit uniforms, about half the cost of torch's on CPU (see tweetcls_core/dropout.py)")
    p.add_argument("--max-train-samples", type=POSITIVE_INT, default=None, help="train on a fixed subset of this size")
    p.add_argument("--max-eval-samples", type=POSITIVE_INT, default=None, help="validate and test on fixed subsets of this size")
    lora = p.add_argument_group("LoRA")
    lora.add_argument("--lora-r", type=POSITIVE_INT, default=8)
    lora.add_argument("--lora-alpha", type=POSITIVE_FLOAT, default=16.0)
    lora.add_argument("--lora-dropout", type=FRACTION, default=0.1)
    lora.add_argument("--lora-targets", type=Text("list of layer names"), default="all-linear",
                      help="comma-separated linear layer names (suffix match, e.g. query,value), or all-linear "
                           "(default: every linear layer of the encoder)")
    lora.add_argument("--lora-rslora", action="store_true", help="scale by alpha/sqrt(r) instead of alpha/r")
    kd = p.add_argument_group("distillation (--method distill, distill-lora)")
    kd.add_argument("--teacher", type=Text("run directory or model"), default=None,
                    help="the teacher: a train.py run directory or a fine-tuned classifier; several, comma-separated, "
                         "for an ensemble (the soft labels are their mean logits; --student only)")
    kd.add_argument("--layers", type=Text("layer choice"), default=None,
                    help="student = these teacher blocks: odd, even (1-based: 1,3,..,11 / 2,4,..,12), distilbert, "
                         "bottom, top, uniform, or 0-based indices like 0,3,6,9")
    kd.add_argument("--student", type=Text("model name or folder"), default=None, help="an independent pretrained student instead (e.g. minilm-l6)")
    kd.add_argument("--kd-temperature", type=POSITIVE_FLOAT, default=2.0)
    kd.add_argument("--kd-alpha", type=PROBABILITY, default=0.5, help="weight of the soft (teacher) term; 1-alpha for labels")
    kd.add_argument("--hidden-loss", choices=("none", "cosine", "mse"), default="none",
                    help="also match the student's last hidden states to the teacher's, tokens aligned by "
                         "character offsets (the teacher then runs every step)")
    kd.add_argument("--hidden-weight", type=NON_NEGATIVE_FLOAT, default=1.0, help="weight of the hidden-state loss")
    kd.add_argument("--transfer-data", type=Text("file or dataset name"), default=None,
                    help="unlabelled texts the student also learns from, through the teacher's soft labels only: "
                         "pool (every offline tweet and GoEmotions text), a .txt file (one per line) or a dataset "
                         "name whose train split is used (e.g. tweet_eval/emoji); the task's own texts and "
                         "near-duplicates of its val/test texts are left out")
    kd.add_argument("--transfer-samples", type=POSITIVE_INT, default=None, help="use at most this many transfer texts")
    out = p.add_argument_group("output")
    out.add_argument("--output-dir", type=OUTPUT_DIR, default="runs")
    out.add_argument("--run-name", type=NAME, default=None, help="default: <dataset>-<method>-<model>-s<seed>-<time>")
    out.add_argument("--overwrite", action="store_true", help="replace an existing run directory of the same name")
    out.add_argument("--resume", type=EXISTING_DIR, metavar="RUN_DIR", default=None,
                     help="continue an interrupted run from RUN_DIR/checkpoints/last.ckpt with its saved options")
    out.add_argument("--checkpoint-every-n-steps", type=POSITIVE_INT, default=50,
                     help="also write last.ckpt every N optimizer steps (it is always written at epoch end)")
    out.add_argument("--progress-bar", action=argparse.BooleanOptionalAction, default=True)
    scale = p.add_argument_group("hardware (passed to lightning.Trainer)")
    scale.add_argument("--accelerator", type=NAME, default="auto")
    scale.add_argument("--devices", type=NAME, default="auto")
    scale.add_argument("--strategy", type=NAME, default="auto")
    scale.add_argument("--num-nodes", type=POSITIVE_INT, default=1)
    scale.add_argument("--precision", type=NAME, default="auto",
                       help="auto: bf16-mixed where the CPU/GPU multiplies bf16 natively, else 32-true; or any of "
                            "Lightning's values (32-true, bf16-mixed, 16-mixed, ...)")
    scale.add_argument("--num-workers", type=NON_NEGATIVE_INT, default=0, help="DataLoader worker processes")
    return p


def parse_run_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Flags over --config's values, or over a resumed run's own config.yaml; the precision resolved.
    Shared by train.py and pretrain.py (parsers with --config, --resume, --output-dir, --run-name,
    --precision and --accelerator)."""
    from tweetcls_core.precision import resolve_precision

    pre, _ = parser.parse_known_args(argv)
    if pre.resume:
        saved = Path(pre.resume) / "config.yaml"
        if not saved.is_file():
            raise UsageError(f"{pre.resume} holds no run to resume (no config.yaml); pass a run directory")
        # the run's own options, so the resumed run trains exactly as the first one did
        options = load_config(str(saved), parser)
        refuse_changes_on_resume(parser, argv, options)
        parser.set_defaults(**options)
    elif pre.config:
        parser.set_defaults(**load_config(pre.config, parser))
    args = parser.parse_args(argv)
    if args.resume:
        args.output_dir, args.run_name = str(Path(args.resume).parent), Path(args.resume).name
    args.precision = resolve_precision(args.precision, args.accelerator)  # what config.yaml and results record
    return args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags, with defaults taken from --config when one is given."""
    args = parse_run_options(build_parser(), argv)
    check_args(args)
    return args


# what may differ when a run is resumed: where the data lives, how it is shown, which hardware
CHANGEABLE_ON_RESUME = {"resume", "config", "data_dir", "progress_bar", "num_workers", "checkpoint_every_n_steps",
                        "accelerator", "devices", "strategy", "num_nodes"}


def refuse_changes_on_resume(parser: argparse.ArgumentParser, argv: list[str] | None, saved: dict) -> None:
    """A resumed run continues the run it was: a flag that would change what its checkpoint was
    built with (--lora-r, --method, ...) is refused, not half-applied."""
    explicit = Parser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            explicit._add_action(_without_default(action))
    given, _ = explicit.parse_known_args(argv)
    for dest, value in vars(given).items():
        if dest == "precision":
            from tweetcls_core.precision import resolve_precision

            value = resolve_precision(value, getattr(given, "accelerator", saved.get("accelerator", "auto")))
        if dest not in CHANGEABLE_ON_RESUME and dest in saved and saved[dest] != value:
            flag = "--" + dest.replace("_", "-")
            raise UsageError(f"--resume continues the run as it was started: it has {flag} {saved[dest]}, not "
                             f"{value}; start a new run (another --run-name) to change it")


def _without_default(action: argparse.Action) -> argparse.Action:
    import copy

    action = copy.copy(action)
    action.default = argparse.SUPPRESS
    action.required = False
    return action


def coerce_config_value(action: argparse.Action, value, path: str):
    """A YAML value checked and converted as argparse would convert the flag's text."""
    flag = action.option_strings[-1] if action.option_strings else action.dest
    if value is None:
        return None
    if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):  # store_true and --x/--no-x
        if not isinstance(value, bool):
            raise UsageError(f"config file {path}: {action.dest} must be true or false, got {value!r}")
        return value
    if isinstance(value, (list, dict)) or isinstance(value, bool):
        raise UsageError(f"config file {path}: {action.dest} must be a single value like {flag} takes, got {value!r}")
    if isinstance(value, float) and isinstance(action.type, Number) and action.type.kind is int:
        if not value.is_integer():  # YAML's 2.5 for an integer option: refused, not truncated
            raise UsageError(f"config file {path}: {action.dest} must be an integer, got {value!r}")
        value = int(value)
    value = check_value(action, value, f"config file {path}")  # the same domain as the flag's
    if action.type is None and action.dest != "config":
        value = str(value)
    if action.choices is not None and value not in action.choices:
        raise UsageError(f"config file {path}: {action.dest} must be one of {', '.join(map(str, action.choices))}, "
                         f"got {value!r}")
    return value


def load_config(path: str, parser: argparse.ArgumentParser) -> dict:
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read config file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must be a mapping of option: value")
    known = {a.dest for a in parser._actions}
    config = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(config) - known - {"config"})
    if unknown:
        raise UsageError(f"config file {path}: unknown option(s) {', '.join(unknown)}; see python train.py --help")
    actions = {a.dest: a for a in parser._actions}
    return {k: coerce_config_value(actions[k], v, path) for k, v in config.items() if k != "config"}


def check_args(args: argparse.Namespace) -> None:
    method = METHODS[args.method]
    if args.lr is None:
        args.lr = method.lr
    if method.distill:
        if not args.teacher:
            raise UsageError(f"--method {args.method} needs --teacher RUN_DIR_OR_MODEL")
        if bool(args.layers) == bool(args.student):
            raise UsageError(f"--method {args.method} needs exactly one of --layers (copy teacher blocks) "
                             "or --student MODEL")
        if "," in args.teacher and (args.layers or args.hidden_loss != "none"):
            raise UsageError("several --teacher folders (an ensemble) work with --student only: layers are copied "
                             "from, and hidden states matched against, one teacher")
        if args.transfer_data and args.kd_alpha == 0:
            raise UsageError("--transfer-data texts have no labels, only the teacher's: use --kd-alpha > 0")
        args.model = args.model or args.student or f"{Path(args.teacher.rstrip('/')).name}-{args.layers}"
    elif args.teacher or args.layers or args.student or args.hidden_loss != "none" or args.transfer_data:
        raise UsageError("--teacher, --layers, --student, --hidden-loss and --transfer-data belong to "
                         "--method distill or distill-lora")
    args.model = args.model or method.model


RUN_DIR_ENV = "TWEETCLS_RUN_DIR"


def checkpoint_to_resume(run_dir: Path) -> str:
    """RUN_DIR/checkpoints/last.ckpt, checked to be whole and free of pickled code."""
    from tweetcls_core.checkpoint_io import load_checkpoint_safely
    from tweetcls_core.runs import RESULTS_FILE

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


def run(args: argparse.Namespace, extra_callbacks: list | None = None, body=None) -> dict:
    """Train, test and save one run, holding its directory's lock; returns what results.json holds.
    ``body(args, extra_callbacks)`` is the run itself (default: ``train_and_save``; pretrain.py's own).

    Under DDP, Lightning starts the other local ranks by re-running this command; they
    find the run directory rank 0 made (and locked) in $TWEETCLS_RUN_DIR instead.
    """
    from tweetcls_core.run_lock import LOCK_FILE, RunLock
    from tweetcls_core.runs import check_run_name, dataset_slug, timestamp

    body = body or train_and_save
    if is_ddp_child():
        return body(args, extra_callbacks)
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
        return body(args, extra_callbacks)
    finally:
        lock.release()
        if created is not None and run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(created)  # failed before writing anything: leave no empty run behind


def train_and_save(args: argparse.Namespace, extra_callbacks: list | None = None) -> dict:
    """The run itself, phase by phase (see ``run``)."""
    import lightning as L

    from tweetcls_core.runs import check_run_dir

    method = METHODS[args.method]
    if not args.resume and not is_ddp_child():
        check_run_dir(args.output_dir, args.run_name, args.overwrite)  # before any slow work
    L.seed_everything(args.seed, workers=True, verbose=False)
    model_dir, teacher_dirs = resolve_model_dirs(args)
    teacher_dir = teacher_dirs[0] if teacher_dirs else None
    tokenizer, datamodule, data = load_data(args, model_dir)
    model, teacher, info = build_model(args, model_dir, teacher_dir, data, tokenizer)
    info |= apply_method(args, method, model)
    if method.distill:
        from distill.data import prepare_distillation_data
        from tweetcls_core.precision import run_device

        info["distill"] |= prepare_distillation_data(datamodule, teacher_dirs, args.transfer_data,
                                                     args.transfer_samples, hidden_loss=args.hidden_loss != "none",
                                                     precision=args.precision, device=run_device(args.accelerator))
    run_dir, resume_from = open_run_dir(args)
    module = make_module(args, method, model, teacher, data)
    trainer, best_checkpoint, last_checkpoint, clock = make_trainer(args, run_dir, extra_callbacks)
    if resume_from is None:  # a resumed run continues the TensorBoard run it already has
        log_run_start(trainer.logger, info)
    fit(trainer, module, datamodule, resume_from, run_dir, last_checkpoint.path, args.lr)
    best = best_checkpoint.best_model_path or None
    val, test, tuning = score(args, trainer, module, datamodule, data, best)
    calibration = {} if data.multi_label or not args.test else calibrate(trainer, module, datamodule, best)
    results = {
        "method": args.method, "model": args.model, "model_path": str(model_dir),
        "dataset": args.dataset, "seed": args.seed, "task_metric": data.metric_name,
        "label_names": data.label_names, "multi_label": data.multi_label, "pooling": model.config.pooling,
        "params_total": info["params_total"], "params_trainable": info["params_trainable"],
        "trainable_pct": 100.0 * info["params_trainable"] / info["params_total"],
        "fit_seconds": clock.fit_seconds, "train_samples_per_sec": clock.samples_per_second,
        "epochs": trainer.current_epoch, "steps": trainer.global_step,
        "best_checkpoint": str(Path(best).relative_to(run_dir)) if best else None,
        "head_bias": args.head_bias if data.multi_label else None,
        "threshold": module.hparams.threshold if data.multi_label else None, "threshold_tuning": tuning,
        "calibration": calibration,
        "val": val, "test": test, "lora": info["lora"], "distill": info["distill"], "run_dir": str(run_dir),
        "precision": args.precision, "config": vars(args),
    }
    if module.test_tensors.get("confusion") is not None:
        results["test"]["confusion_matrix"] = module.test_tensors["confusion"].tolist()  # true label by row
    if trainer.is_global_zero:
        export(args, method, module.model, tokenizer, run_dir, results)
        log_run_end(trainer, results, module.test_tensors, data)
    return results


def resolve_model_dirs(args: argparse.Namespace) -> tuple[Path, list[Path]]:
    """(folder of the model to train, folders of the teachers: none, one, or an ensemble given as
    comma-separated --teacher). A layer-copied student keeps its teacher's tokenizer, so its model
    folder is the teacher's."""
    from tweetcls_core.resolve import resolve_model

    if not METHODS[args.method].distill:
        return resolve_model(args.model), []
    from distill.student import teacher_model_dir

    teacher_dirs = [teacher_model_dir(t.strip()) for t in args.teacher.split(",")]
    return (resolve_model(args.student) if args.student else teacher_dirs[0]), teacher_dirs


def load_data(args: argparse.Namespace, model_dir: Path):
    """(tokenizer, datamodule, raw labelled data); the splits are read, not yet tokenized."""
    from datamodules import TextClassificationDataModule
    from tweetcls_core.build import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    datamodule = TextClassificationDataModule(
        args.dataset, tokenizer, data_dir=args.data_dir, max_length=args.max_length,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, seed=args.seed,
        max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples,
        text_column=args.text_column, label_column=args.label_column, num_workers=args.num_workers,
        encoding=args.encoding, val_file=args.val_file, test_file=args.test_file,
    )
    return tokenizer, datamodule, datamodule.load()


def build_model(args: argparse.Namespace, model_dir: Path, teacher_dir: Path | None, data, tokenizer):
    """(model with a head for the data's labels, teacher or None, info). Multi-label heads start
    at the label priors (tweetcls_core/prior_bias.py)."""
    import torch

    from tweetcls_core.build import load_classifier, max_model_length

    teacher, distill_info = None, {}
    if teacher_dir is not None:
        from distill.student import build_student

        model, teacher, distill_info = build_student(teacher_dir, data.label_names, data.multi_label, args.layers,
                                                     model_dir if args.student else None, args.pooling)
        distill_info |= {"temperature": args.kd_temperature, "alpha": args.kd_alpha,
                         "hidden_loss": args.hidden_loss, "hidden_weight": args.hidden_weight}
    else:
        model = load_classifier(model_dir, data.label_names, data.multi_label, args.pooling)
    if data.multi_label and args.head_bias == "prior" and not args.resume:
        from tweetcls_core.prior_bias import init_bias_to_label_prior

        init_bias_to_label_prior(model, torch.tensor(data.splits["train"]["label"]))
    limit = max_model_length(model, tokenizer)
    if args.max_length > limit:
        raise UsageError(f"--max-length {args.max_length} exceeds what {args.model} accepts ({limit})")
    return model, teacher, {"distill": distill_info}


def apply_method(args: argparse.Namespace, method: Method, model) -> dict:
    """Make only what the method trains trainable (LoRA adapters, an int8 base), swap in the
    fast dropout; returns the method's record and the parameter counts."""
    from tweetcls_core.parameters import count_parameters

    lora_info = {}
    if method.adapters:
        from lora import inject_lora, mark_only_lora_as_trainable

        targets = args.lora_targets.split(",") if args.lora_targets else None
        wrapped = inject_lora(model, targets, r=args.lora_r, alpha=args.lora_alpha,
                              dropout=args.lora_dropout, use_rslora=args.lora_rslora)
        mark_only_lora_as_trainable(model)
        lora_info = {"targets": wrapped, "r": args.lora_r, "alpha": args.lora_alpha,
                     "dropout": args.lora_dropout, "rslora": args.lora_rslora}
    if method.int8_base:
        from compress.int8_base import quantize_frozen_linears

        lora_info["int8_base_layers"] = len(quantize_frozen_linears(model))
    if args.fast_dropout:
        from tweetcls_core.dropout import use_fast_dropout

        use_fast_dropout(model)
    total, trainable = count_parameters(model)
    return {"lora": lora_info, "params_total": total, "params_trainable": trainable}


def open_run_dir(args: argparse.Namespace) -> tuple[Path, str | None]:
    """(absolute run directory, checkpoint to resume from or None): a new run gets a fresh directory
    with its config.yaml; a DDP rank > 0 finds rank 0's."""
    import yaml

    from tweetcls_core.atomic import write_text_atomic
    from tweetcls_core.runs import new_run_dir

    resume_from = None
    if is_ddp_child():
        run_dir = Path(os.environ[RUN_DIR_ENV])
    elif args.resume:
        run_dir = Path(args.resume)
        resume_from = checkpoint_to_resume(run_dir)
    else:
        run_dir = new_run_dir(args.output_dir, args.run_name, args.overwrite)
        write_text_atomic(run_dir / "config.yaml", yaml.safe_dump({**vars(args), "run_name": run_dir.name},
                                                                  sort_keys=False))
    run_dir = run_dir.resolve()  # Lightning reports checkpoint paths absolute
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir, resume_from


def make_module(args: argparse.Namespace, method: Method, model, teacher, data):
    """The LightningModule: the classifier, or distillation's subclass with its loss terms."""
    from tweetcls_core.classifier import TextClassifier

    options = dict(multi_label=data.multi_label, metric=data.metric, metric_classes=data.metric_classes,
                   lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                   threshold=args.threshold, adapter_only_checkpoints=method.adapters)
    if not method.distill:
        return TextClassifier(model, data.label_names, **options)
    from distill.module import DistillationClassifier

    hidden = args.hidden_loss != "none"
    return DistillationClassifier(model, data.label_names, kd_alpha=args.kd_alpha, kd_temperature=args.kd_temperature,
                                  teacher=teacher if hidden else None, hidden_loss=args.hidden_loss if hidden else None,
                                  hidden_weight=args.hidden_weight, **options)


def make_trainer(args: argparse.Namespace, run_dir: Path, extra_callbacks: list | None,
                 monitor: tuple[str, str] = ("val/task_metric", "max")):
    """(Trainer, best-checkpoint callback, last-checkpoint callback, clock): TensorBoard, the best
    checkpoint by ``monitor`` (metric, max|min), last.ckpt for --resume, early stopping, atomic
    checkpoint writes."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from tweetcls_core.checkpoint_io import AtomicCheckpointIO
    from tweetcls_core.last_checkpoint import LastCheckpoint
    from tweetcls_core.review import ReviewLogger
    from tweetcls_core.timing import TrainingClock

    logger = ReviewLogger(save_dir=run_dir.parent, name=run_dir.name, version="", default_hp_metric=False)
    metric, mode = monitor
    best = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best-{epoch}-{step}",
                           monitor=metric, mode=mode, save_top_k=1)
    last = LastCheckpoint(run_dir / "checkpoints" / "last.ckpt", args.checkpoint_every_n_steps)
    clock = TrainingClock()
    callbacks = [best, last, clock, LearningRateMonitor(logging_interval="step"), *(extra_callbacks or [])]
    interval = getattr(args, "val_check_interval", 1.0)  # pretrain.py has no such option
    if args.patience:  # EarlyStopping counts validations: --patience epochs of them
        callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=validations_in(args.patience, interval),
                                       check_on_train_epoch_end=False))
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    trainer = L.Trainer(
        max_epochs=args.max_epochs, max_steps=args.max_steps, accelerator=args.accelerator,
        devices=devices, strategy=args.strategy, num_nodes=args.num_nodes, precision=args.precision,
        logger=logger, callbacks=callbacks, log_every_n_steps=10,
        enable_progress_bar=args.progress_bar, enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        # passed only when set: Lightning announces an explicit 1.0 on every run
        **({"val_check_interval": interval} if interval != 1.0 else {}),
    )
    return trainer, best, last, clock


def validations_in(epochs: int, val_check_interval: float) -> int:
    """How many validations ``epochs`` epochs hold, validating ``val_check_interval`` of an epoch apart."""
    return math.ceil(epochs / val_check_interval - 1e-9)


def log_run_start(logger, info: dict) -> None:
    """Parameter counts and the review layout, once, at the start of a new run (the hyperparameters
    go in with the final metrics at the end: see tweetcls_core/review.py)."""
    from tweetcls_core.review import log_layout

    total, trainable = info["params_total"], info["params_trainable"]
    logger.log_metrics({"params/total": total, "params/trainable": trainable,
                        "params/trainable_pct": 100.0 * trainable / total}, step=0)
    log_layout(logger.experiment)


def fit(trainer, module, datamodule, resume_from: str | None, run_dir: Path, last_checkpoint: str, lr: float,
        program: str = "train.py") -> None:
    """``trainer.fit``, with a diverged loss, a signal or a full disk each told as one line."""
    from tweetcls_core.atomic import storage_error

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


def score(args: argparse.Namespace, trainer, module, datamodule, data, best: str | None) -> tuple[dict, dict, dict]:
    """(val, test, threshold tuning) of the best checkpoint; a multi-label threshold is chosen on val first."""
    tuning = {}
    if data.multi_label and args.tune_threshold:
        tuning = tune_threshold_on_val(trainer, module, datamodule, data, best)
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    if not args.test:
        return {k.removeprefix("val/"): v for k, v in val.items()}, {}, tuning
    test = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)[0]
    return ({k.removeprefix("val/"): v for k, v in val.items()}, {k.removeprefix("test/"): v for k, v in test.items()},
            tuning)


def calibrate(trainer, module, datamodule, best: str | None) -> dict:
    """Temperature scaling fitted on val's logits, with ECE on test before and after
    (tweetcls_core/calibration.py); predictions and metrics are unchanged by it."""
    import torch

    from tweetcls_core.calibration import calibration_report

    def logits_and_labels(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = trainer.predict(module, dataloaders=datamodule.split_dataloader(split), ckpt_path=best,
                                  weights_only=True)
        return torch.cat([o["logits"] for o in outputs]).float(), torch.cat([o["labels"] for o in outputs])

    return calibration_report(logits_and_labels("validation"), logits_and_labels("test"))


def export(args: argparse.Namespace, method: Method, model, tokenizer, run_dir: Path, results: dict) -> None:
    """adapter/ (LoRA), model/ (plain fp32, LoRA merged), then results.json, which marks a finished run.
    Each folder appears whole or not at all."""
    from tweetcls_core.atomic import atomic_directory
    from tweetcls_core.hub_card import CARD_FILE, model_card
    from tweetcls_core.latency import cpu_latency
    from tweetcls_core.saved_model import save_classifier
    from tweetcls_core.runs import environment, write_json

    # the decision rule travels with every saved form (model/, int8 variants, ONNX)
    if results["multi_label"]:
        model.config.multi_label_threshold = results["threshold"]
    if results["calibration"]:
        model.config.calibration_temperature = results["calibration"]["temperature"]
    if method.adapters:
        from lora import merge_lora, save_adapter

        if not args.layers:  # a layer-copied student's base exists only inside the run: model/ holds it merged
            with atomic_directory(run_dir / "adapter") as folder:
                save_adapter(model, folder, extra={
                    "base_model": args.model, "base_model_path": results["model_path"], "method": args.method,
                    "label_names": results["label_names"], "multi_label": results["multi_label"],
                    "pooling": results["pooling"], "threshold": results["threshold"],
                    "temperature": (results["calibration"] or {}).get("temperature")})
        merge_lora(model)
    if method.int8_base:  # the saved model is plain fp32: dequantized base + update
        from compress.int8_base import dequantize_linears

        dequantize_linears(model)
    with atomic_directory(run_dir / "model") as folder:  # what plain transformers loads, with its model card
        save_classifier(model, folder, tokenizer)
        (folder / CARD_FILE).write_text(model_card(results, "transformers", str(run_dir / "model")))
    results["inference"] = cpu_latency(model, args.precision)
    results["environment"] = environment()
    if COMMAND_STARTED:  # the whole command, imports included (a resumed run: since the resume)
        results["wall_seconds"] = time.time() - COMMAND_STARTED[0]
    write_json(run_dir / "results.json", results)


def log_run_end(trainer, results: dict, test_tensors: dict, data) -> None:
    """HPARAMS with the final metrics (one point each), the test pictures and the summary, once."""
    import torch

    from tweetcls_core.review import final_metrics, log_hparams, log_pictures, log_summary, review_hparams

    writer, step = trainer.logger.experiment, trainer.global_step
    log_hparams(writer, review_hparams(results["config"], results), final_metrics(results), step)
    frequency = torch.tensor(data.splits["train"]["label"]).float().mean(dim=0) if data.multi_label else None
    log_pictures(writer, test_tensors, data.label_names, step, frequency)
    log_summary(writer, results, step)
    trainer.logger.finalize("success")


def interrupted(stop: SystemExit, trainer, run_dir: Path, last_checkpoint: str, program: str = "train.py") -> Interrupted:
    """SIGTERM (a scheduler, ``kill``, ``docker stop``) or Ctrl-C during fit, as one line with the way on."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    by_sigterm = isinstance(stop, SIGTERMException)
    kept = (f"continue with: python {program} --resume {run_dir}" if Path(last_checkpoint).exists()
            else "no checkpoint was written yet; start the run again")
    return Interrupted(f"{'stopped by SIGTERM' if by_sigterm else 'interrupted'} at step {trainer.global_step}; {kept}",
                       143 if by_sigterm else 130)


def tune_threshold_on_val(trainer, module, datamodule, data, best: str | None) -> dict:
    """Set the module's multi-label threshold to the one with the best val metric."""
    import torch

    from tweetcls_core.threshold import tune_threshold

    outputs = trainer.predict(module, dataloaders=datamodule.val_dataloader(), ckpt_path=best, weights_only=True)
    probs = torch.cat([o["probs"] for o in outputs]).float().cpu()
    labels = torch.cat([o["labels"] for o in outputs]).cpu()
    threshold, scores = tune_threshold(probs, labels, data.label_names, data.metric, data.metric_classes)
    threshold = trainer.strategy.broadcast(threshold)  # under DDP, rank 0's choice for every rank
    module.set_threshold(threshold)
    return {"split": "validation", "chosen": threshold, "val_metric_by_threshold": {str(k): v for k, v in scores.items()}}


def print_summary(results: dict) -> None:
    from tweetcls_core.review import summary_lines

    print("\n" + "\n".join(summary_lines(results)))
    print(f"  TensorBoard: tensorboard --logdir {Path(results['run_dir']).parent}")


def main(argv: list[str] | None = None) -> int:
    COMMAND_STARTED[:] = [time.time()]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
        quiet_libraries()
        results = run(args)
    except (UsageError, TrainingDiverged, StorageFull) as err:
        return report("train.py", err)
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

"""train.py's options: the method table, the parser, --config YAML and --resume's saved
options, and the checks that tie options together. Every option declares its domain
(core/options.py), so a bad value is one line before anything loads."""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from tweetcls.core.errors import UsageError
from tweetcls.core.options import (DefaultsHelp, EXISTING_DIR, EXISTING_FILE, Encoding, FRACTION, NAME, NON_NEGATIVE_FLOAT,
                                   NON_NEGATIVE_INT, Number, OPEN_PROBABILITY, OUTPUT_DIR, POSITIVE_FLOAT, POSITIVE_INT,
                                   PROBABILITY, Parser, SEED, STEPS_OR_ALL, Text, check_value, yaml_mapping)
from tweetcls.training.settings import TrainSettings


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
# the LoRA layer's parameter names (lora/, core/errors.ParameterError) -> the flags that fill them
LORA_FLAGS = {"r": "--lora-r", "alpha": "--lora-alpha", "dropout": "--lora-dropout"}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description="Fine-tune a transformer encoder for short-text classification.",
               formatter_class=DefaultsHelp)
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
    p.add_argument("--encoding", type=Encoding(), default="utf-8", help="text encoding of a local data file and a --transfer-data file (e.g. latin-1, cp1252)")
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
                        "(prior) or at 0 as Hugging Face does (zero; learns far slower, see training/prior_bias.py)")
    p.add_argument("--test", action=argparse.BooleanOptionalAction, default=True,
                   help="score the test split when training ends (tune.py turns it off: a search never scores test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--fast-dropout", action=argparse.BooleanOptionalAction, default=True,
                   help="dropout masks from 15-bit uniforms, about half the cost of torch's on CPU (see core/dropout.py)")
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
    add_run_options(p, run_name_help="default: <dataset>-<method>-<model>-s<seed>-<time>")
    return p


def add_run_options(p: argparse.ArgumentParser, run_name_help: str) -> None:
    """The run-folder and hardware flags every training command has (train.py, pretrain.py):
    training/settings.py's RunSettings fields, read by pipeline.run, make_trainer and hardware.py."""
    out = p.add_argument_group("output")
    out.add_argument("--output-dir", type=OUTPUT_DIR, default="runs")
    out.add_argument("--run-name", type=NAME, default=None, help=run_name_help)
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
    scale.add_argument("--num-nodes", type=POSITIVE_INT, default=1,
                       help="machines; each needs MASTER_ADDR, MASTER_PORT and NODE_RANK (training/hardware.py)")
    scale.add_argument("--node-timeout", type=POSITIVE_FLOAT, default=600.0,
                       help="with --num-nodes > 1: give up after this many seconds without all nodes")
    scale.add_argument("--precision", type=NAME, default="auto",
                       help="auto: bf16-mixed where the CPU/GPU multiplies bf16 natively, else 32-true; or any of "
                            "Lightning's values (32-true, bf16-mixed, 16-mixed, ...)")
    scale.add_argument("--num-workers", type=NON_NEGATIVE_INT, default=0, help="DataLoader worker processes")


def parse_run_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Flags over --config's values, or over a resumed run's own config.yaml; the precision resolved.
    Shared by train.py and pretrain.py (parsers with --config, --resume, --output-dir, --run-name,
    --precision and --accelerator)."""
    from tweetcls.core.precision import resolve_precision

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


def parse_args(argv: list[str] | None = None) -> TrainSettings:
    """train.py's settings: flags over --config's values (or a resumed run's), checked together and
    against this machine's hardware, before anything slow loads or any folder is made."""
    from tweetcls.training.hardware import check_hardware

    args = parse_run_options(build_parser(), argv)
    check_args(args)
    settings = TrainSettings.from_namespace(args)
    check_hardware(settings)  # before the run folder exists: a refused start leaves nothing to clean up
    return settings


# what may differ when a run is resumed: where the data lives, how it is shown, which hardware
CHANGEABLE_ON_RESUME = {"resume", "config", "data_dir", "progress_bar", "num_workers", "checkpoint_every_n_steps",
                        "accelerator", "devices", "strategy", "num_nodes", "node_timeout"}


def given_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The options ``argv`` sets itself (no defaults, no --config): dest -> value."""
    explicit = Parser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            explicit._add_action(_without_default(action))
    return explicit.parse_known_args(argv)[0]


def fixed_by_user(argv: list[str] | None) -> set[str]:
    """The train.py options the user set in ``argv``, by flag or in its --config file."""
    parser = build_parser()
    given = set(vars(given_flags(parser, argv)))
    config = parser.parse_known_args(argv)[0].config
    if config:
        given |= set(load_config(config, parser))
    return given - {"config"}


def refuse_changes_on_resume(parser: argparse.ArgumentParser, argv: list[str] | None, saved: dict) -> None:
    """A resumed run continues the run it was: a flag that would change what its checkpoint was
    built with (--lora-r, --method, ...) is refused, not half-applied."""
    given = given_flags(parser, argv)
    for dest, value in vars(given).items():
        if dest == "precision":
            from tweetcls.core.precision import resolve_precision

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


def coerce_config_value(action: argparse.Action, value, where: str):
    """A typed value (from YAML, or from code) checked and converted as argparse would convert the
    flag's text; ``where`` starts each error line (``config file x.yaml``)."""
    flag = action.option_strings[-1] if action.option_strings else action.dest
    if value is None:
        if action.default is None or action.default is argparse.SUPPRESS:  # null is what leaving the option out means
            return None
        # null for an option with a value by default reached the code as None (batch_size: ~ was a TypeError
        # from the data module, dataset: null an AttributeError, max_epochs: null trained up to 1000 epochs)
        raise UsageError(f"{where}: {action.dest} is null; give it a value like {flag} takes, or leave the key out "
                         f"for the default ({action.default})")
    if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):  # store_true and --x/--no-x
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {action.dest} must be true or false, got {value!r}")
        return value
    if isinstance(value, (list, dict)) or isinstance(value, bool):
        raise UsageError(f"{where}: {action.dest} must be a single value like {flag} takes, got {value!r}")
    if isinstance(value, float) and isinstance(action.type, Number) and action.type.kind is int:
        if not value.is_integer():  # YAML's 2.5 for an integer option: refused, not truncated
            raise UsageError(f"{where}: {action.dest} must be an integer, got {value!r}")
        value = int(value)
    value = check_value(action, value, where)  # the same domain as the flag's
    if action.type is None and action.dest != "config":
        value = str(value)
    if action.choices is not None and value not in action.choices:
        raise UsageError(f"{where}: {action.dest} must be one of {', '.join(map(str, action.choices))}, "
                         f"got {value!r}")
    return value


def load_config(path: str, parser: argparse.ArgumentParser) -> dict:
    try:
        values = yaml_mapping(Path(path).read_text(encoding="utf-8"), f"config file {path}") or {}
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
    check_nested_config(path, config)
    actions = {a.dest: a for a in parser._actions}
    return {k: coerce_config_value(actions[k], v, f"config file {path}") for k, v in config.items() if k != "config"}


# what every run's saved config.yaml holds (pipeline.open_run_dir writes all of a run's settings)
RUN_RECORD_KEYS = {"output_dir", "run_name", "resume", "precision"}


def check_nested_config(path: str, config: dict) -> None:
    """A ``config:`` key inside a --config file: a file is not read from another, so ``config:
    other.yaml`` was ignored without a word. Passed where it changes nothing: null, the file itself,
    or a run's saved config.yaml, whose ``config`` records where its values first came from (the
    record holds every value itself)."""
    nested = config.get("config")
    if nested is None or RUN_RECORD_KEYS <= set(config):
        return
    try:
        same = Path(str(nested)).resolve() == Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        same = False
    if not same:
        raise UsageError(f"config file {path}: config: {nested} is not read (a --config file does not include "
                         f"another); copy its keys into {path}, or pass --config {nested} on the command line")


def with_options(settings: TrainSettings, where: str, **values) -> TrainSettings:
    """A copy of ``args`` with ``values`` set: typed values (``lr=3e-4``, ``test=False``), each checked
    against its option's domain as its flag would be, then the whole checked again (``check_args``).
    How tune.py makes a trial's settings; ``where`` names the source in an error (``trial 3``)."""
    actions = {a.dest: a for a in build_parser()._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise UsageError(f"{where}: unknown option(s) {', '.join(unknown)}; see python train.py --help")
    changed = settings.as_namespace()
    for dest, value in values.items():
        setattr(changed, dest, coerce_config_value(actions[dest], value, where))
    check_args(changed)
    return TrainSettings.from_namespace(changed)


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
        derived = args.student or f"{Path(args.teacher.rstrip('/')).name}-{args.layers}"
        if args.model and args.model != derived:  # (checked again by with_options: the derived name passes)
            # the weights come from --student or the teacher's blocks: a --model beside them was recorded as
            # the run's model in results.json while another model was trained
            raise UsageError(f"--method {args.method} trains " + (f"--student {args.student}" if args.student else
                             "a copy of the teacher's --layers") + f", not --model {args.model}; drop --model")
        args.model = args.model or derived
        if args.hidden_loss == "none" and args.hidden_weight != option_defaults()["hidden_weight"]:
            # the weight of a term that is not computed was ignored without a word
            raise UsageError(f"--hidden-weight {args.hidden_weight:g} weighs the hidden-state loss, which is off; "
                             "add --hidden-loss cosine (or mse), or drop --hidden-weight")
        if not args.transfer_data and args.transfer_samples is not None:
            raise UsageError(f"--transfer-samples {args.transfer_samples} limits the --transfer-data texts, and "
                             "none were given; add --transfer-data, or drop --transfer-samples")
    check_method_options(args, method)
    args.model = args.model or method.model


# the options only some methods read, and which: another method's option (--kd-alpha with --method
# lora, a --config's lora_r with --method full) was ignored without a word, by flag and by YAML alike
METHOD_OPTIONS = (
    (lambda m: m.distill, "--method distill or distill-lora",
     ("teacher", "layers", "student", "kd_temperature", "kd_alpha", "hidden_loss", "hidden_weight", "transfer_data",
      "transfer_samples")),
    (lambda m: m.adapters, "--method lora, qlora or distill-lora",
     ("lora_r", "lora_alpha", "lora_dropout", "lora_targets", "lora_rslora")),
)


@functools.cache
def option_defaults() -> dict:
    """train.py's options -> their defaults (the parser's, before any --config or --resume)."""
    return {a.dest: a.default for a in build_parser()._actions if a.dest != "help"}


def unread_options(method: str) -> dict[str, str]:
    """The options ``--method method`` does not read -> the methods that do (in words)."""
    return {dest: owners for reads, owners, dests in METHOD_OPTIONS if not reads(METHODS[method]) for dest in dests}


def check_method_options(args: argparse.Namespace, method: Method) -> None:
    """Refuse an option the method does not read, set to anything but its default (by a flag, a
    --config, or a search). Its default passes: a run's config.yaml holds every option, so
    ``--config runs/X/config.yaml`` and ``--resume`` read back the other methods' defaults. A resumed
    run is not checked: its values are its own (refuse_changes_on_resume holds them), and a run
    saved before this check with another method's value (ignored as it trained) must still finish."""
    if getattr(args, "resume", None):
        return
    defaults = option_defaults()
    for reads, owners, dests in METHOD_OPTIONS:
        unused = [dest for dest in dests if not reads(method) and getattr(args, dest) != defaults[dest]]
        if unused:
            given = ", ".join("--" + dest.replace("_", "-") + ("" if getattr(args, dest) is True else
                                                               f" {getattr(args, dest)}") for dest in unused)
            many = len(unused) > 1
            raise UsageError(f"{given} {'belong' if many else 'belongs'} to {owners}; --method {args.method} does "
                             f"not read {'them' if many else 'it'}: drop {'them' if many else 'it'} (or "
                             f"{'their keys' if many else 'its key'} in the --config file), or choose such a method")

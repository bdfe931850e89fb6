"""Search hyperparameters with Optuna: TPE, pruned trials, a study in a database.

    python tune.py --method lora --dataset disaster_tweets --trials 20
    python tune.py --method lora --dataset my.csv --trials 10 --max-train-samples 2000 --space my_space.yaml
    python tune.py ... --storage postgresql://user@dbhost/optuna --study-name disaster-lora   # a worker

Every option tune.py does not know is a train.py option, fixed for every trial. Each trial
is an ordinary train.py run (`<output-dir>/<study>/trials/trial-N`: TensorBoard, results.json)
that never scores the test split; its objective is the validation task metric, reported
each epoch to a median (or Hyperband) pruner that stops hopeless trials early. The study
lives in SQLite in the study folder, or any SQLAlchemy URL (--storage): running the same
command again continues it, a killed worker's trial is marked failed and retried, and any
number of workers on one storage share the trials until --trials are finished.
At the end: best.yaml (the best trial's options, for train.py --config), the best
configuration retrained once and scored on test (best/), and the study summary
(summary.md/.csv, Optuna's plots as PNG and in TensorBoard).
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
from tweetcls.core.options import EXISTING_FILE, NAME, POSITIVE_FLOAT, POSITIVE_INT, SEED, Parser, Text, program
from tweetcls.core.settings import Settings
from tweetcls.training.settings import TrainSettings

PRUNERS = ("median", "percentile", "hyperband", "none")
DEFAULT_SPACE = {"lora": "lora", "qlora": "lora", "full": "full", "teacher": "full", "distill": "distill",
                 "distill-lora": "lora"}
SPACES = Path(__file__).resolve().parent / "configs" / "search"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description=__doc__.split("\n\n")[0],
                                epilog="Other options are train.py's (python train.py --help), fixed for every trial.")
    p.add_argument("--trials", type=POSITIVE_INT, required=True, help="finished (complete or pruned) trials the study needs")
    p.add_argument("--timeout", type=POSITIVE_FLOAT, default=None, help="stop starting trials after this many seconds")
    p.add_argument("--space", type=EXISTING_FILE, default=None, help="search space YAML (default: configs/search/<method>.yaml)")
    p.add_argument("--storage", type=Text("database URL"), default=None, help="SQLAlchemy URL of the study (default: SQLite in the study folder)")
    p.add_argument("--study-name", type=NAME, default=None, help="default: <dataset>-<method>")
    p.add_argument("--pruner", choices=PRUNERS, default="median")
    p.add_argument("--sampler-seed", type=SEED, default=0,
                   help="trial N draws from (seed, N): workers and restarts never repeat a trial, the same seed repeats a study")
    p.add_argument("--heartbeat-seconds", type=POSITIVE_FLOAT, default=10.0,
                   help="a worker's trial is declared dead after 3 heartbeats without news, then retried")
    p.add_argument("--retrain", action=argparse.BooleanOptionalAction, default=True,
                   help="retrain the best configuration once and score it on test")
    return p


@dataclass(frozen=True, kw_only=True)
class TuneSettings(Settings):
    """tune.py's own settings, one field per flag (its help: python tune.py --help); the rest of its
    command line is train.py's, fixed for every trial (TrainSettings)."""

    trials: int  # finished (complete or pruned) trials the study needs
    timeout: float | None  # seconds after which no trial starts; None: no limit
    space: str | None  # search space YAML; None: configs/search/<method>.yaml
    storage: str | None  # SQLAlchemy URL of the study; None: SQLite in the study folder
    study_name: str | None  # None: <dataset>-<method>
    pruner: str  # one of PRUNERS
    sampler_seed: int  # trial N draws from (seed, N)
    heartbeat_seconds: float  # a trial is dead after 3 heartbeats without news
    retrain: bool  # retrain the best configuration once and score it on test


def parse(argv: list[str] | None) -> tuple[TuneSettings, TrainSettings]:
    """(tune's options, train.py's options fixed for every trial, checked once)."""
    from tweetcls.training import options as train_options

    parsed, train_argv = build_parser().parse_known_args(argv)
    args = TuneSettings.from_namespace(parsed)
    if any(flag in train_argv for flag in ("--resume", "--run-name", "--overwrite", "--test", "--no-test")):
        raise UsageError("--resume, --run-name, --overwrite and --test are set by tune.py for each trial")
    fixed = train_options.parse_args(train_argv)  # checks the fixed options once, before any trial
    return args, fixed


def study_storage(url: str, heartbeat: float = 10.0):
    """Optuna's RDB storage with heartbeats: a worker that dies mid-trial leaves a RUNNING trial whose
    heartbeat stops; the next worker marks it FAIL and queues its parameters again."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for attempt in range(5):
        try:
            return RDBStorage(url, heartbeat_interval=max(1, round(heartbeat)),
                              grace_period=max(3, round(3 * heartbeat)),
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except Exception as err:  # SQLAlchemy's ArgumentError, OperationalError, a missing driver...
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            racing = ("already exists", "duplicate key", "UniqueViolation", "UNIQUE constraint", "database is locked")
            if any(word in first for word in racing) and attempt < 4:  # another worker is creating the tables
                time.sleep(0.5 + attempt)
                continue
            raise UsageError(f"cannot open the study storage {url}: {first[:200]}") from None


def make_pruner(name: str):
    """--pruner: the median rule; ``percentile``, stricter, goes on only with trials in the top
    quarter at their step; Hyperband; or none."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=3, n_warmup_steps=0)
    return optuna.pruners.HyperbandPruner() if name == "hyperband" else optuna.pruners.NopPruner()


def make_sampler(seed: int):
    """TPE whose random draws for trial N come from (``seed``, N), so workers never repeat each other.

    One ``TPESampler(seed=seed)`` per worker gives every worker the same stream: two workers on one
    study drew the same points (4 trials, 2 configurations), and a restarted worker drew trial 0's
    again. Optuna reseeds only threads of one process (``n_jobs``; ``BaseSampler.reseed_rng``) and
    has no rule for separate processes (optuna/optuna#1547). Keyed by the trial number, which the
    storage hands out once, the draws differ between workers and restarts yet repeat exactly for
    the same study run again with the same seed. TPE's constant liar (on by default in Optuna 5)
    keeps workers away from points still training."""
    import numpy as np
    import optuna

    class TrialSeededTPE(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self.by_trial: dict[int, optuna.samplers.TPESampler] = {}

        def _tpe(self, trial) -> optuna.samplers.TPESampler:
            if trial.number not in self.by_trial:
                trial_seed = int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0])
                self.by_trial[trial.number] = optuna.samplers.TPESampler(seed=trial_seed)
            return self.by_trial[trial.number]

        def infer_relative_search_space(self, study, trial):
            return self._tpe(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._tpe(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._tpe(trial).sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial) -> None:
            self._tpe(trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values) -> None:
            self._tpe(trial).after_trial(study, trial, state, values)
            self.by_trial.pop(trial.number, None)

    return TrialSeededTPE()


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def fit_only_pruning(trial, monitor: str = "val/task_metric"):
    """Optuna's Lightning pruning callback, reporting each validation of ``fit`` as its own step.

    Two changes to Optuna's: it reports the validation's index, not the epoch, so that with
    ``--val-check-interval 0.25`` a trial can be pruned a quarter into its first epoch (Optuna's
    would report four values under one step and keep only the first); and it ignores validations
    outside ``fit``: train.py validates the best checkpoint once more after fitting, which Optuna's
    took for one more epoch and which pruned a trial that had already finished (emotion study:
    1 of its 12 pruned trials, its finished training thrown away)."""
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    class FitOnlyPruning(PyTorchLightningPruningCallback):
        validations = 0

        def on_validation_end(self, trainer, pl_module) -> None:
            if trainer.state.fn != "fit" or trainer.sanity_checking:
                return
            score = trainer.callback_metrics.get(self.monitor)
            if self.is_ddp_backend or score is None:  # Optuna's own path (per epoch) and its warning
                return super().on_validation_end(trainer, pl_module)
            step, self.validations = self.validations, self.validations + 1
            self._trial.report(score.item(), step=step)
            if self._trial.should_prune():
                raise optuna.TrialPruned(f"Trial was pruned at validation {step}.")

    return FitOnlyPruning(trial, monitor)


class SurplusTrial(Exception):
    """A trial started after the study already held ``--trials`` others; it stops its worker."""


def beyond_budget(trial, n_trials: int) -> bool:
    """Whether ``n_trials`` trials numbered before this one are running or finished.

    Optuna's MaxTrialsCallback counts after a trial ends, so two workers that both see one
    place left both start a trial (optuna/optuna#3518). The storage hands out trial numbers
    atomically, so ranking by number has no such race: the lower number keeps the place."""
    from optuna.trial import TrialState

    ahead = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                           TrialState.RUNNING))
    return sum(t.number < trial.number for t in ahead) >= n_trials


class QuietTrials(logging.Filter):
    """Optuna logs a caught exception as a failed trial with its traceback; a surplus trial is no
    failure, and a trial stopped by Ctrl-C or SIGTERM is told in tune.py's one line, so their two
    warnings are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.getMessage().startswith(f"Trial {n} failed") for n in self.numbers)


class CtrlC:
    """Ctrl-C ends the study, always: the SIGINT handler sets a flag before it raises KeyboardInterrupt,
    and the flag is checked before each trial, after it, at every batch of its training and
    validation, and before the retrain. A KeyboardInterrupt alone can land inside a weakref callback or
    a ``__del__``, where Python prints "Exception ignored" and drops it: the study ran on to its end
    (hostile pass 5, T11). Such a dropped KeyboardInterrupt is not printed; the flag carries it.

    Installed only over Python's own handler: a tune.py started with SIGINT ignored (a shell's
    background job) stays so."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "CtrlC":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._previous is not None:  # also undoes Lightning's SIG_IGN after an interrupted fit
            signal.signal(signal.SIGINT, self._previous)
            sys.unraisablehook = self._previous_hook
            self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        if not (self.requested and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            self._previous_hook(unraisable)

    def check(self, *_) -> None:
        """Raise KeyboardInterrupt if Ctrl-C came, wherever its own KeyboardInterrupt went (also an
        Optuna callback: ``check(study, trial)``)."""
        if self.requested:
            raise KeyboardInterrupt

    def lightning_callback(self):
        """A Lightning callback that checks at the start of fit and of every training and validation
        batch: Lightning ends the fit as for a KeyboardInterrupt of its own (exit 130, one line)."""
        import lightning as L

        check = self.check

        class CheckCtrlC(L.Callback):
            def on_fit_start(self, *_) -> None:
                check()

            def on_train_batch_start(self, *_) -> None:
                check()

            def on_validation_batch_start(self, *_) -> None:
                check()

        return CheckCtrlC()


def objective_for(space: dict, fixed: TrainSettings, trials_dir: Path, n_trials: int,
                  quiet: QuietTrials | None = None, ctrl_c: CtrlC | None = None):
    import optuna

    from tweetcls.training import options as train_options, pipeline
    from tweetcls.search_space import suggest

    ctrl_c = ctrl_c or CtrlC()

    def objective(trial) -> float:
        ctrl_c.check()
        if beyond_budget(trial, n_trials):
            trial.set_user_attr("surplus", True)  # no parameters, never trained; the report leaves it out
            trial.study.stop()
            if quiet is not None:
                quiet.numbers.add(trial.number)
            print(f"{program('tune.py')}: the study already has {n_trials} trials (another worker took the last place); "
                  "this worker stops", file=sys.stderr)
            raise SurplusTrial(f"the study already has {n_trials} trials")
        args = train_options.with_options(fixed, f"trial {trial.number}", **suggest(trial, space),
                                          output_dir=str(trials_dir), run_name=f"trial-{trial.number}",
                                          overwrite=True, test=False, progress_bar=False)
        start = time.perf_counter()
        try:
            results = pipeline.run(args, extra_callbacks=[fit_only_pruning(trial), ctrl_c.lightning_callback()])
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        except (Interrupted, KeyboardInterrupt) as err:  # main() says it in one line, without Optuna's traceback
            if quiet is not None:
                quiet.numbers.add(trial.number)
            if isinstance(err, Interrupted):  # its way on was train.py's ("--resume trials/trial-3"), not the study's
                how = "stopped by SIGTERM" if err.exit_code == 143 else "interrupted"
                raise Interrupted(f"{how} during trial {trial.number}", err.exit_code) from None
            raise
        trial.set_user_attr("seconds", time.perf_counter() - start)
        trial.set_user_attr("run_dir", results["run_dir"])
        return results["val"]["task_metric"]

    return objective


def retrained_best(folder: Path, params: dict, options: dict) -> bool:
    """Whether ``folder`` (the study's best/) is a finished retrain of the trial with ``params``. A study
    continued with more --trials can find a better trial; its best/ kept the old one's test score beside
    a best.yaml that named the new one, without a word."""
    from tweetcls.core.results_file import RESULTS_FILE, read_results
    from tweetcls.training.options import coerce_config_value

    if not (folder / RESULTS_FILE).exists():
        return False
    config = read_results(folder).get("config", {})
    return all(config.get(name) == coerce_config_value(options[name], value, "the best trial")
               for name, value in params.items())


def check_study_dir(study_dir: Path) -> None:
    """Refuse (one line, before any trial) a folder that is no study's yet holds a file tune.py writes there:
    a user's folder named as the study (--output-dir/--study-name) had its own summary.md and best.yaml
    replaced by the study's. A study's folder holds its study.db (SQLite) or its trials/ (any storage)."""
    from tweetcls.core.ownership import some
    from tweetcls.study_report import PLOTS

    if not study_dir.is_dir() or (study_dir / "study.db").exists() or (study_dir / "trials").is_dir():
        return
    ours = ["summary.md", "summary.csv", "best.yaml", "best", "_study", *(f"{name}.png" for name in PLOTS)]
    found = [name for name in ours if (study_dir / name).exists()]
    if found:
        raise UsageError(f"{study_dir} is not a study's folder (no study.db, no trials/) and holds {some(found)}, which "
                         "tune.py would replace: nothing was changed; choose another --study-name or --output-dir")


FIXED_OPTIONS = "fixed_options"  # the study's user attribute: the train.py options its first command fixed


def check_same_fixed_options(study, options: dict) -> None:
    """A study runs on with the train.py options it was started with. Run again with another fixed option
    (--batch-size 8 after 16), it mixed trials of both without a word, and best.yaml joined the best
    trial's values to the new option, a configuration no trial had trained (best/ was not retrained).
    What may differ is what --resume lets differ (where the data lives, hardware, progress output) and the
    precision each machine resolves."""
    import json

    from tweetcls.training.options import CHANGEABLE_ON_RESUME

    # precision is resolved per machine ("auto": bf16-mixed where the CPU has bf16, else 32-true): workers on
    # other machines share a study (docs/search.md), so it may differ as the hardware options may
    free = CHANGEABLE_ON_RESUME | {"precision"}
    mine = json.loads(json.dumps({k: v for k, v in options.items() if k not in free}, default=str))
    saved = study.user_attrs.get(FIXED_OPTIONS)
    if not isinstance(saved, dict):  # a new study (or one from before this record): these are its options
        study.set_user_attr(FIXED_OPTIONS, mine)
        return
    for key in sorted(set(saved) | set(mine)):
        if key not in free and saved.get(key) != mine.get(key):
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"study {study.study_name} was run with {flag} {saved.get(key)}, not {mine.get(key)}: "
                             f"new trials would not compare with its trials, and best.yaml would give one trial's "
                             f"values with this {flag}; run it with the options it was started with, or start "
                             "another --study-name")


def check_fixed_and_searched(space: dict, train_argv: list[str], space_file, options: dict) -> None:
    """An option both fixed (a flag, or its --config) and searched is refused: every trial took the
    space's value, so ``--max-epochs 1`` beside the default space trained 2 to 5 epochs without a word."""
    from tweetcls.training.options import fixed_by_user

    both = sorted(set(space) & fixed_by_user(train_argv))
    if both:
        flags = ", ".join(options[name].option_strings[-1] for name in both)
        raise UsageError(f"{flags} fixed for the study but also searched by {space_file}, so every trial would "
                         "ignore the fixed value; drop the flag, or pass --space with a space that leaves it out")


def check_searched_by_method(space: dict, method: str, space_file) -> None:
    """A space that searches an option the method does not read (kd_alpha for lora, lora_r for full)
    is refused before any trial, as the option itself is (training/options.py)."""
    from tweetcls.training.options import unread_options

    unread = unread_options(method)
    searched = [name for name in space if name in unread]
    if searched:
        raise UsageError(f"{space_file} searches {', '.join(searched)}, which --method {method} does not read "
                         f"(it belongs to {unread[searched[0]]}); pass a --space without it, or choose such a method")


# options a method reads only beside another one: searched while that one is off, trial 0 was refused
# (Optuna's traceback, a failed trial and a study folder left) instead of the space before any trial
SEARCHED_ONLY_WITH = {
    "hidden_weight": ("hidden_loss", "none", "the weight of the hidden-state loss, which is off (--hidden-loss none)",
                      "add --hidden-loss cosine (or mse)"),
    "transfer_samples": ("transfer_data", None, "the limit of the --transfer-data texts, and none were given",
                         "add --transfer-data"),
}


def check_searched_dependents(space: dict, fixed: TrainSettings, space_file) -> None:
    """A space that searches an option whose companion is fixed off (hidden_weight with --hidden-loss
    none) is refused before any trial, as the flag itself is (training/options.py)."""
    for name, (companion, off, what, fix) in SEARCHED_ONLY_WITH.items():
        if name in space and companion not in space and getattr(fixed, companion) == off:
            raise UsageError(f"{space_file} searches {name}, {what}; {fix}, or pass a --space without it")


def run(argv: list[str] | None, ctrl_c: CtrlC | None = None) -> dict:
    import optuna
    import yaml
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from tweetcls.training import options as train_options, pipeline
    from tweetcls.search_space import load_space
    from tweetcls.study_report import write_study_report
    from tweetcls.core.atomic import write_text_atomic
    from tweetcls.core.runs import dataset_slug

    ctrl_c = ctrl_c or CtrlC()
    args, fixed = parse(argv)
    actions = {a.dest: a for a in train_options.build_parser()._actions}
    space_file = args.space or SPACES / f"{DEFAULT_SPACE[fixed.method]}.yaml"
    space = load_space(space_file, actions)
    check_fixed_and_searched(space, build_parser().parse_known_args(argv)[1], space_file, actions)
    check_searched_by_method(space, fixed.method, space_file)
    check_searched_dependents(space, fixed, space_file)
    name = args.study_name or f"{dataset_slug(fixed.dataset)}-{fixed.method}"
    study_dir = Path(fixed.output_dir) / name
    check_study_dir(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = study_storage(args.storage or f"sqlite:///{(study_dir / 'study.db').resolve()}", args.heartbeat_seconds)
    pruner = make_pruner(args.pruner)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=make_sampler(args.sampler_seed), pruner=pruner)
    options = {k: v for k, v in fixed.as_dict().items() if k not in ("resume", "config", "run_name", "output_dir")}
    check_same_fixed_options(study, options)
    already = finished(study)
    if already < args.trials:
        print(f"{program('tune.py')}: study {name}: {already} of {args.trials} trials finished; running the rest", file=sys.stderr)
        quiet = QuietTrials()
        optuna_log = logging.getLogger("optuna.study._optimize")
        optuna_log.addFilter(quiet)
        try:
            study.optimize(objective_for(space, fixed, study_dir / "trials", args.trials, quiet, ctrl_c),
                           timeout=args.timeout,
                           # running trials count too, so workers sharing the study stop at --trials in all
                           callbacks=[ctrl_c.check, MaxTrialsCallback(args.trials, states=(
                               TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))],
                           catch=(SurplusTrial,))
        finally:
            optuna_log.removeFilter(quiet)
    ctrl_c.check()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise UsageError(f"study {name} has no complete trial yet; run the command again (or with more --trials)")
    best = study.best_trial
    best_options = options | best.params
    write_text_atomic(study_dir / "best.yaml", yaml.safe_dump(best_options, sort_keys=False))  # never half a file
    summary = write_study_report(study, study_dir, fixed.max_epochs, pipeline.validations_in(1, fixed.val_check_interval))
    retrained = None
    if args.retrain and finished(study) >= args.trials and not retrained_best(study_dir / "best", best.params, actions):
        ctrl_c.check()
        retrained = pipeline.run(train_options.parse_args(["--config", str(study_dir / "best.yaml"), "--output-dir",
                                                str(study_dir), "--run-name", "best", "--overwrite",
                                                "--no-progress-bar"]), extra_callbacks=[ctrl_c.lightning_callback()])
    ctrl_c.check()
    return {"study": name, "study_dir": str(study_dir), "best_trial": best.number, "best_value": best.value,
            "best_params": best.params, "summary": summary, "retrained": retrained}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from tweetcls.core.quiet import quiet_libraries

        quiet_libraries()
        with CtrlC() as ctrl_c:
            result = run(argv, ctrl_c)
    except REPORTED as err:  # bad input, a diverged trial, any OSError: one line naming the path
        from tweetcls.training import options as train_options

        flags = flags_of(train_options.build_parser(), **train_options.LORA_FLAGS) | flags_of(build_parser())
        return report(program("tune.py"), err, flags)
    except Interrupted as err:  # SIGTERM or Ctrl-C in a trial: the study goes on when the command is run again
        print(f"{program('tune.py')}: {err}; run the same tune.py command again to go on with the study", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:  # outside a trial's fit (loading, a trial's start): finished trials are in the study
        print(f"{program('tune.py')}: interrupted; finished trials are kept in the study: run the same tune.py "
              "command again to go on with it", file=sys.stderr)
        return 130
    print(result["summary"]["markdown"])
    print(f"best: trial {result['best_trial']}, val {result['best_value']:.4f}, {result['best_params']}")
    print(f"  {result['study_dir']}/best.yaml: python train.py --config {result['study_dir']}/best.yaml")
    if result["retrained"]:
        r = result["retrained"]
        print(f"  retrained on test: {r['task_metric']} {r['test']['task_metric']:.4f} ({r['run_dir']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""tune.py: a study of ordinary runs that never score test, resumable after a crash, shared by
workers (SQLite and a real PostgreSQL), with bad input as one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from tweetcls.training import options as train_options
from tweetcls.commands import tune

from conftest import REPO

SPACE = "lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\nlora_r: {type: categorical, choices: [2, 4]}\n"
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "TWEETCLS_RUN_DIR"}


def tune_argv(model_dir, csv, out, space, trials, *extra):
    return ["--method", "lora", "--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out),
            "--trials", str(trials), "--space", str(space), "--batch-size", "16", "--max-epochs", "2",
            "--study-name", "s", *extra]


def load(out: Path, storage: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=storage or f"sqlite:///{out / 's' / 'study.db'}")


@pytest.fixture()
def space(tmp_path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def test_a_study_of_runs_that_never_score_test_then_the_best_retrained(tiny_model_dir, tiny_csv, tmp_path, space):
    assert tune.main(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 3, "--pruner", "none")) == 0
    study_dir = tmp_path / "s"
    study = load(tmp_path)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for t in trials:  # each trial is an ordinary run directory with its TensorBoard events
        results = json.loads((Path(t.user_attrs["run_dir"]) / "results.json").read_text())
        assert results["test"] == {} and results["val"]["task_metric"] == pytest.approx(t.value)
        assert results["config"]["lr"] == pytest.approx(t.params["lr"]) and results["lora"]["r"] == t.params["lora_r"]
        assert list(Path(t.user_attrs["run_dir"]).glob("events.out.tfevents.*"))
        # one report per epoch of fit; the validation of the best checkpoint after it is no epoch
        assert sorted(t.intermediate_values) == [0, 1]
    best = yaml.safe_load((study_dir / "best.yaml").read_text())
    assert best["lr"] == pytest.approx(study.best_params["lr"]) and best["dataset"] == str(tiny_csv)
    args = train_options.parse_args(["--config", str(study_dir / "best.yaml")])  # train.py takes it as it is
    assert args.lora_r == study.best_params["lora_r"]
    retrained = json.loads((study_dir / "best" / "results.json").read_text())
    assert retrained["test"]["task_metric"] >= 0 and retrained["config"]["lora_r"] == study.best_params["lora_r"]
    summary = (study_dir / "summary.md").read_text()
    assert summary.count("| COMPLETE |") == 3 and "3 trials: 3 complete, 0 pruned" in summary
    assert (study_dir / "optimization_history.png").is_file()


def test_the_same_command_continues_the_study(tiny_model_dir, tiny_csv, tmp_path, space):
    assert tune.main(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 2, "--no-retrain")) == 0
    assert tune.main(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4, "--no-retrain")) == 0
    numbers = [t.number for t in load(tmp_path).get_trials()]
    assert numbers == [0, 1, 2, 3]
    assert tune.main(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4, "--no-retrain")) == 0  # nothing left
    assert len(load(tmp_path).get_trials()) == 4


def test_a_worker_killed_mid_trial_loses_no_finished_trial_and_its_trial_is_retried(
        tiny_model_dir, tiny_csv, tmp_path, space):
    # --patience 0: the tiny task plateaus at once, and early stopping would end each trial within a second
    # 40 epochs (120 steps): a trial lasts a minute on a loaded 2-core machine, long enough to be caught
    # running with a checkpoint, short enough that the first one finishes well within the deadline
    argv = tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 3, "--no-retrain", "--max-epochs", "40",
                     "--patience", "0", "--heartbeat-seconds", "1", "--pruner", "none",
                     "--checkpoint-every-n-steps", "5")
    worker = subprocess.Popen([sys.executable, str(REPO / "tune.py"), *argv], env=CHILD_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = None
    try:
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline:  # a trial training after a finished one
            time.sleep(0.3)
            try:
                trials = load(tmp_path).get_trials()
            except Exception:  # the database is not there yet
                continue
            finished = [t.number for t in trials if t.state.name == "COMPLETE"]
            running = [t.number for t in trials if t.state.name == "RUNNING" and
                       (tmp_path / "s" / "trials" / f"trial-{t.number}" / "checkpoints" / "last.ckpt").exists()]
            if finished and running:
                victim = running[0]
        assert victim is not None, "the worker never finished a trial and started the next"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    before = {t.number: t.state.name for t in load(tmp_path).get_trials()}
    assert before[victim] == "RUNNING"  # dead, but nobody knows yet
    time.sleep(4)  # past the grace period: 3 heartbeats
    short = argv[:argv.index("--max-epochs") + 1] + ["2"] + argv[argv.index("--max-epochs") + 2:]
    assert tune.main(short) == 0
    trials = load(tmp_path).get_trials()
    states = {t.number: t.state.name for t in trials}
    assert all(states[n] == "COMPLETE" for n, s in before.items() if s == "COMPLETE")  # no finished trial lost
    assert states[victim] == "FAIL" and list(states.values()).count("COMPLETE") == 3
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == victim]
    assert len(retried) == 1 and retried[0].params == trials[victim].params  # the same point, tried again


def two_workers(argv: list[str]) -> None:
    workers = [subprocess.Popen([sys.executable, str(REPO / "tune.py"), *argv], env=CHILD_ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]


def test_two_workers_share_one_sqlite_study(tiny_model_dir, tiny_csv, tmp_path, space):
    tmp_path.joinpath("s").mkdir()
    two_workers(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4, "--no-retrain", "--pruner", "none"))
    trials = load(tmp_path).get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # no number given twice
    assert_four_complete_and_the_rest_surplus(trials)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len({Path(t.user_attrs["run_dir"]).name for t in complete}) == 4  # one run directory each
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 4  # no point trained twice (issue 46)


def assert_four_complete_and_the_rest_surplus(trials) -> None:
    """Exactly --trials trained; a trial a worker started after the last place was taken
    stopped before choosing parameters, and the report leaves it out."""
    from tweetcls.study_report import trial_rows

    assert sum(t.state.name == "COMPLETE" for t in trials) == 4
    assert all(t.user_attrs.get("surplus") and not t.params for t in trials if t.state.name != "COMPLETE")
    assert len(trial_rows(FakeStudy(trials))) == 4


class FakeStudy:
    def __init__(self, trials):
        self.trials = trials

    def get_trials(self, deepcopy=True):
        return self.trials


def test_two_workers_that_both_see_one_place_left_start_one_trial_between_them():
    """The race MaxTrialsCallback leaves open (optuna#3518): both workers ask for a trial
    before either has counted. The lower trial number keeps the place."""
    study = optuna.create_study(direction="maximize")
    for value in (0.1, 0.2):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))
    running = study.ask()  # trial 2, still training
    first, second = study.ask(), study.ask()  # two workers, one place left of 4
    assert [tune.beyond_budget(t, 4) for t in (running, first, second)] == [False, False, True]
    study.tell(running, state=optuna.trial.TrialState.FAIL)  # a failed trial gives its place back
    assert not tune.beyond_budget(second, 4)
    assert tune.beyond_budget(second, 3)


def test_a_worker_that_finds_the_last_place_taken_trains_nothing_and_exits_0(tiny_model_dir, tiny_csv, tmp_path,
                                                                               space, capsys, caplog):
    tmp_path.joinpath("s").mkdir()
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}",
                                direction="maximize")
    lr, r = optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True), optuna.distributions.CategoricalDistribution([2, 4])
    for value in (0.5, 0.6, 0.7):
        study.add_trial(optuna.trial.create_trial(params={"lr": 2e-3, "lora_r": 2}, value=value,
                                                  distributions={"lr": lr, "lora_r": r}))
    study.ask()  # trial 3: another worker holds the fourth place
    assert tune.main(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4, "--no-retrain")) == 0
    trials = load(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 + ["RUNNING", "FAIL"]
    assert trials[4].user_attrs["surplus"] and not trials[4].params
    assert not (tmp_path / "s" / "trials" / "trial-4").exists()  # nothing trained
    assert "| 4 |" not in (tmp_path / "s" / "summary.md").read_text()
    assert "another worker took the last place" in capsys.readouterr().err
    assert not [r for r in caplog.records if "Trial 4" in r.getMessage()]  # no failure, no traceback


@pytest.fixture()
def postgres(tmp_path):
    """A PostgreSQL 15 server on a free loopback port in a temporary folder, stopped afterwards."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's initdb and pg_ctl must be on PATH under CI")
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) here")
    from benchmarks.live_server import free_port

    import tempfile

    # initdb refuses root: as root the server runs as nobody, in a folder nobody can reach
    # (pytest's tmp_path sits under a folder only root may enter)
    base = Path(tempfile.mkdtemp(prefix="tweetcls-pg-"))
    base.chmod(0o755)
    data = base / "data"
    run_as = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    data.mkdir()
    if run_as:
        shutil.chown(data, "nobody")
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE optuna")
        connection.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(tiny_model_dir, tiny_csv, tmp_path, space, postgres):
    two_workers(tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 4, "--no-retrain", "--pruner", "none",
                          "--storage", postgres))
    trials = load(tmp_path, postgres).get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))
    assert_four_complete_and_the_rest_surplus(trials)


@pytest.mark.parametrize("space_text, extra, words", [
    ("learning_rate: {type: float, low: 0.1, high: 1}\n", [], "'learning_rate' is not a train.py option"),
    ("lr: {type: float, low: 0.1, high: 0.1}\n", [], "lr has an empty range (low 0.1, high 0.1)"),
    ("lr: {type: gaussian, low: 0.1, high: 1}\n", [], "lr needs type: float | int | categorical"),
    ("lora_r: {type: categorical, choices: []}\n", [], "lora_r needs a non-empty list of choices"),
    ("lr: {type: float, low: 0, high: 1, log: true}\n", [], "so low must be > 0"),
    ("method: {type: categorical, choices: [lora, full]}\n", [], "'method' is fixed for a study"),
    ("- just a list\n", [], "must map option names to ranges"),
    (SPACE, ["--trials", "0"], "--trials must be an integer > 0"),
    (SPACE, ["--storage", "nosuchdb://x"], "cannot open the study storage nosuchdb://x"),
    (SPACE, ["--method", "magic"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_model_dir, tiny_csv, tmp_path, capsys, space_text, extra, words):
    path = tmp_path / "bad.yaml"
    path.write_text(space_text)
    argv = tune_argv(tiny_model_dir, tiny_csv, tmp_path / "out", path, 2) + extra
    assert tune.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tune.py: error: ") and words in err[0], err
    assert not (tmp_path / "out" / "s" / "trials").exists()


def test_pruning_savings_price_missing_validations_at_the_complete_trials_pace():
    from tweetcls.study_report import pruning_savings

    rows = [{"state": "COMPLETE", "seconds": 100.0, "validations": 4, "param_max_epochs": 4},  # 25 s each
            {"state": "COMPLETE", "seconds": 60.0, "validations": 2, "param_max_epochs": 2},  # 30 s each
            {"state": "COMPLETE", "seconds": 40.0, "validations": 4, "param_max_epochs": 4},  # 10 s each
            {"state": "PRUNED", "seconds": 30.0, "validations": 1, "param_max_epochs": 4},  # 3 left
            {"state": "PRUNED", "seconds": 40.0, "validations": 2},  # default 3 epochs: 1 left
            {"state": "FAIL", "seconds": 500.0, "validations": 0}]
    savings = pruning_savings(rows, default_epochs=3)
    assert savings["seconds"] == 270.0
    assert savings["saved_seconds"] == (3 + 1) * 25.0  # the median pace: not the mean, nor the pruned trials' own 30 and 20
    assert savings["share_of_unpruned"] == 270.0 / 370.0
    # validating twice an epoch: a pruned trial's missing validations; with no complete trial, at its own pace
    twice = [{"state": "PRUNED", "seconds": 30.0, "validations": 1, "param_max_epochs": 2}]  # 3 of 30 s left
    assert pruning_savings(twice, default_epochs=3, validations_per_epoch=2)["saved_seconds"] == 90.0


def test_with_validation_twice_an_epoch_each_validation_is_a_pruning_step(tiny_model_dir, tiny_csv, tmp_path, space):
    """96 training rows / 16 = 6 steps an epoch, validated every 3: 2 epochs give 4 reports, so a
    pruner can stop a trial half-way into its first epoch."""
    argv = tune_argv(tiny_model_dir, tiny_csv, tmp_path, space, 1, "--pruner", "none", "--val-check-interval", "0.5",
                     "--no-retrain")
    assert tune.main(argv) == 0
    (trial,) = load(tmp_path).get_trials()
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    assert yaml.safe_load((tmp_path / "s" / "best.yaml").read_text())["val_check_interval"] == 0.5  # retrained alike


def test_the_percentile_pruner_keeps_only_the_top_quarter_where_the_median_keeps_half():
    import optuna

    def verdict(pruner: str, value: float) -> bool:
        study = optuna.create_study(direction="maximize", pruner=tune.make_pruner(pruner))
        for finished_value in (0.1, 0.2, 0.3, 0.4):  # four finished trials, reported at step 0
            trial = study.ask()
            trial.report(finished_value, step=0)
            study.tell(trial, finished_value)
        trial = study.ask()
        trial.report(value, step=0)
        return trial.should_prune()

    assert not verdict("median", 0.3) and verdict("percentile", 0.3)  # above the median, below the top quarter
    assert not verdict("percentile", 0.38)  # in the top quarter
    assert verdict("median", 0.2) and not verdict("none", 0.0)


def test_a_trial_gets_typed_settings_checked_as_flags_are(tiny_model_dir, tiny_csv):
    """tune.py hands a trial its settings as values, not --k=v strings; each still meets its flag's domain."""
    from tweetcls.core.errors import UsageError
    from tweetcls.training.options import parse_args, with_options

    fixed = parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv)])
    trial = with_options(fixed, "trial 3", lr=3e-4, lora_r=4, test=False, run_name="trial-3")
    assert (trial.lr, trial.lora_r, trial.test, trial.run_name) == (3e-4, 4, False, "trial-3")
    assert (fixed.lr, fixed.test, fixed.run_name) != (3e-4, False, "trial-3")  # the fixed options stay as they were
    with pytest.raises(UsageError, match=r"^trial 3: lr must be a number > 0, got -1.0"):
        with_options(fixed, "trial 3", lr=-1.0)
    with pytest.raises(UsageError, match="^trial 3: test must be true or false"):
        with_options(fixed, "trial 3", test="no")
    with pytest.raises(UsageError, match="^trial 3: unknown option"):
        with_options(fixed, "trial 3", learning_rate=1e-3)

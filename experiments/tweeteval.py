"""The whole offline TweetEval benchmark for one recipe, resumable, and its leaderboard.

    python -m experiments.tweeteval --recipe lora                 # train + score every task, seeds 0 1 2
    python -m experiments.tweeteval --recipe full --tasks stance irony
    python -m experiments.tweeteval --report-only                 # the leaderboard from what has finished
    python -m experiments.tweeteval --recipe lora --dry-run       # print the training commands only
    python -m experiments.tweeteval --recipe lora --root /tmp/te -- --max-epochs 1   # extra train.py flags

Recipes: ``lora`` (``train.py --method lora`` as it comes), ``full`` (``--method full``),
``teacher`` (MPNet-12, configs/teacher_emotion.yaml's recipe), ``student`` (the best <= 23M
recipe, configs/distill_pool_emotion.yaml: MiniLM-L6 from the mean logits of this benchmark's
three teacher runs of the same task over its training tweets plus one pass over the pool; it
trains those teachers first). Each run goes to ROOT/RECIPE/<task>-s<seed> (stance:
stance-<target>-s<seed>, one run per target), trained through experiments/suites.py's
train_command: a finished run is skipped, a stopped one resumes. Tasks run smallest first,
seeds inside a task, so a stopped benchmark has whole cells (task x 3 seeds) finished.

After each run its test predictions are written (ROOT/.../test_predictions.txt, TweetEval
label ids) and gathered per seed into RESULTS/tweeteval/RECIPE/s<seed>/ in TweetEval's layout
(<task>.txt, stance/<target>.txt); the leaderboard (RESULTS/leaderboard.md/.csv/.json and a
figure in RESULTS/leaderboard-tensorboard) is written from those files with the evaluation
script's computation (experiments/tweeteval_scoring.py), for every recipe with a finished run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from tweetcls.datamodules.sources import STANCE_TARGETS
from tweetcls.core.results_file import read_results
from experiments.suites import drop_checkpoints, train_command
from experiments.tweeteval_scoring import OFFLINE_TASKS, prediction_file, write_ids

RUN_ORDER = ("stance", "irony", "emotion", "hate", "offensive", "emoji")  # smallest training sets first
RECIPES = {
    "lora": ["--method", "lora"],
    "full": ["--method", "full"],
    "teacher": ["--method", "teacher", "--model", "mpnet-base", "--lr", "3e-5", "--max-epochs", "3"],
    "student": ["--method", "distill", "--student", "minilm-l6", "--kd-alpha", "0.9", "--kd-temperature", "2.0",
                "--lr", "1e-4", "--max-epochs", "1", "--transfer-data", "pool"],
}
TEACHER_SEEDS = (0, 1, 2)  # the student's teachers: the teacher recipe's three seeds of the same task
PREDICTIONS = "test_predictions.txt"
DEFAULT_ROOT = Path("/root/tweetcls-runs/tweeteval")
DEFAULT_RESULTS = Path(__file__).with_name("results")


def datasets(task: str) -> list[str]:
    """The train.py datasets of one TweetEval task (stance: one per target)."""
    return [f"tweet_eval/stance/{t}" for t in STANCE_TARGETS] if task == "stance" else [f"tweet_eval/{task}"]


def run_dir(root: Path, recipe: str, dataset: str, seed: int) -> Path:
    return Path(root) / recipe / f"{dataset.removeprefix('tweet_eval/').replace('/', '-')}-s{seed}"


def plan(recipe: str, root: Path, tasks: list[str], seeds: list[int], extra: list[str] = ()) -> list[tuple[Path, list[str]]]:
    """(run directory, train.py flags) in training order; a student's teachers come before it."""
    runs: list[tuple[Path, list[str]]] = []
    for task in tasks:
        for seed in seeds:
            for dataset in datasets(task):
                flags = [*RECIPES[recipe], "--dataset", dataset, "--seed", str(seed), *extra]
                if recipe == "student":
                    teachers = [run_dir(root, "teacher", dataset, s) for s in TEACHER_SEEDS]
                    planned = {r for r, _ in runs}
                    runs += [(t, [*RECIPES["teacher"], "--dataset", dataset, "--seed", str(s), *extra])
                             for t, s in zip(teachers, TEACHER_SEEDS) if t not in planned]
                    flags += ["--teacher", ",".join(str(t) for t in teachers)]
                runs.append((run_dir(root, recipe, dataset, seed), flags))
    return runs


def mapping_ids(tweeteval: Path, dataset: str) -> dict[str, str]:
    """TweetEval's label id of each label name, from the task's mapping.txt: ``id<TAB>name`` lines,
    where emoji's carry a third column (the emoji's description: ``0<TAB>❤<TAB>_red_heart_``)."""
    folder = tweeteval / dataset.removeprefix("tweet_eval/")
    mapping = (folder.parent if "/stance/" in dataset else folder) / "mapping.txt"
    rows = [line.split("\t") for line in mapping.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row[1].strip(): row[0].strip() for row in rows}


def write_test_predictions(run: Path, tweeteval: Path) -> Path:
    """RUN/test_predictions.txt: the saved model's top label on each test tweet, as a TweetEval id."""
    from tweetcls.predictor import Predictor

    out = run / PREDICTIONS
    if out.is_file():
        return out
    results = read_results(run)
    dataset = results["dataset"]
    texts = (tweeteval / dataset.removeprefix("tweet_eval/") / "test_text.txt").read_text(encoding="utf-8").split("\n")[:-1]
    predictor = Predictor.from_run(run)
    ids = mapping_ids(tweeteval, dataset)
    top = predictor.logits([t if t.strip() else "." for t in texts]).argmax(-1)
    write_ids(out, [int(ids[predictor.label_names[i]]) for i in top])
    return out


def record_path(results_dir: Path, run: Path) -> Path:
    """RESULTS/tweeteval/RECIPE/s<seed>/records/<run name>.json: what the leaderboard needs of a run
    (time, parameters, model), committed with the predictions so that a later session on a fresh
    machine (its run folders gone) keeps the row and does not train the run again."""
    seed = run.name.rsplit("-s", 1)[1]
    return results_dir / "tweeteval" / run.parent.name / f"s{seed}" / "records" / f"{run.name}.json"


def write_record(run: Path, results_dir: Path) -> None:
    results = read_results(run)
    env = results.get("environment") or {}
    record = {key: results.get(key) for key in ("dataset", "method", "model", "seed", "fit_seconds", "params_total",
                                                "params_trainable", "precision", "test")}
    record["machine"] = {key: env.get(key) for key in ("processor", "cpu_count", "platform", "created_utc",
                                                       "git_commit")}
    path = record_path(results_dir, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")


def read_record(root: Path, results_dir: Path, recipe: str, dataset: str, seed: int) -> dict | None:
    """A finished run's record: the committed one, else its run folder's results.json."""
    run = run_dir(root, recipe, dataset, seed)
    committed = record_path(results_dir, run)
    if committed.is_file():
        return json.loads(committed.read_text())
    if (run / "results.json").is_file():
        return read_results(run)
    return None


def gather(root: Path, recipe: str, seeds: list[int], results_dir: Path) -> None:
    """Copy each finished run's test predictions into RESULTS/tweeteval/RECIPE/s<seed>/ (TweetEval's
    layout) with its record; a task whose runs are not all finished gets no prediction file."""
    for seed in seeds:
        folder = results_dir / "tweeteval" / recipe / f"s{seed}"
        for task in OFFLINE_TASKS:
            for dataset in datasets(task):
                run = run_dir(root, recipe, dataset, seed)
                if (run / "results.json").is_file():
                    write_record(run, results_dir)
            sources = [run_dir(root, recipe, d, seed) / PREDICTIONS for d in datasets(task)]
            if not all(s.is_file() for s in sources):
                continue
            targets = STANCE_TARGETS if task == "stance" else (None,)
            for source, target in zip(sources, targets):
                path = prediction_file(folder, task, target)
                if not path.is_file() or path.read_bytes() != source.read_bytes():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(source.read_bytes())


def committed(run: Path, results_dir: Path) -> bool:
    """Finished in an earlier session: its record and its prediction file are committed."""
    return not (run / "results.json").exists() and record_path(results_dir, run).is_file()


def train(runs: list[tuple[Path, list[str]]], data_dir: Path | None, dry_run: bool, keep_checkpoints: bool,
          results_dir: Path = DEFAULT_RESULTS) -> int:
    """Run each unfinished run (suites.train_command), then write its test predictions. A run
    committed by an earlier session is skipped unless a run still to train needs it (a teacher)."""
    needed = {Path(t) for run, flags in runs if not committed(run, results_dir) and "--teacher" in flags
              for t in flags[flags.index("--teacher") + 1].split(",")}
    for run, flags in runs:
        if committed(run, results_dir) and run not in needed:
            print(f"skip {run}: finished earlier ({record_path(results_dir, run)})", file=sys.stderr)
            continue
        data_flag = ["--data-dir", str(data_dir)] if data_dir and not (run / "checkpoints" / "last.ckpt").exists() else []
        cmd = train_command(run, [*flags, *data_flag])
        if cmd is None:
            print(f"skip {run}: finished", file=sys.stderr)
        else:
            print("run:", " ".join(cmd[1:]), file=sys.stderr, flush=True)
            if dry_run:
                continue
            if subprocess.run(cmd).returncode != 0:
                print(f"tweeteval.py: {run} failed; rerun the same command to resume", file=sys.stderr)
                return 1
        if not dry_run:
            if not keep_checkpoints:
                drop_checkpoints(run)
            write_test_predictions(run, tweeteval_dir(data_dir))
    return 0


def tweeteval_dir(data_dir: Path | None) -> Path:
    """The offline TweetEval folder: --data-dir, else $TWEETCLS_DATA_DIR, else ../shared/data."""
    from tweetcls.datamodules.sources import default_data_dir

    base = data_dir or default_data_dir()
    if base is None or not (Path(base) / "tweet_eval").is_dir():
        raise SystemExit(f"tweeteval.py: no tweet_eval folder under {base}; pass --data-dir (the shared data folder)")
    return Path(base) / "tweet_eval"


def recipes_with_runs(root: Path, results_dir: Path = DEFAULT_RESULTS) -> list[str]:
    """Recipes with a finished run here or a committed record of one."""
    return [r for r in RECIPES if any((Path(root) / r).glob("*/results.json"))
            or any((results_dir / "tweeteval" / r).glob("s*/records/*.json"))]


def report(root: Path, results_dir: Path, data_dir: Path | None, seeds: list[int], recipes: list[str]) -> dict:
    """Predictions for every finished run (written where missing), gathered, scored, and the leaderboard."""
    from experiments.tweeteval_leaderboard import project_row, write_leaderboard

    tweeteval = tweeteval_dir(data_dir)
    rows = []
    for recipe in recipes:
        for task in OFFLINE_TASKS:
            for seed in seeds:
                for dataset in datasets(task):
                    run = run_dir(root, recipe, dataset, seed)
                    if (run / "results.json").is_file() and (run / "model").is_dir():
                        write_test_predictions(run, tweeteval)
        gather(root, recipe, seeds, results_dir)
        rows.append(project_row(recipe, root, results_dir, tweeteval, seeds))
    return write_leaderboard(rows, results_dir)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=None, help="the recipe to train and score")
    parser.add_argument("--tasks", nargs="+", choices=RUN_ORDER, default=list(RUN_ORDER),
                        help="tasks to train, in this order (default: smallest first)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("TWEETEVAL_ROOT", DEFAULT_ROOT)),
                        help=f"runs go to ROOT/RECIPE/<task>-s<seed> (default {DEFAULT_ROOT}, or $TWEETEVAL_ROOT)")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS,
                        help="leaderboard files and tweeteval/ prediction files go here (default experiments/results)")
    parser.add_argument("--data-dir", type=Path, default=None, help="the shared data folder (holding tweet_eval/)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the leaderboard from the finished runs (missing cells marked)")
    parser.add_argument("--dry-run", action="store_true", help="print the training commands only")
    parser.add_argument("--keep-checkpoints", action="store_true")
    args = parser.parse_args(argv)
    if not args.recipe and not args.report_only:
        parser.error("name a --recipe to train (lora, full, teacher, student), or pass --report-only")
    if args.data_dir is not None and not (args.data_dir / "tweet_eval").is_dir():
        parser.error(f"--data-dir {args.data_dir}: no tweet_eval folder there; give the shared data folder")
    if not args.report_only:
        code = train(plan(args.recipe, args.root, args.tasks, args.seeds, extra), args.data_dir, args.dry_run,
                     args.keep_checkpoints, args.results_dir)
        if code or args.dry_run:
            return code
    # every recipe with a finished run is a row, so one recipe's command keeps the others' rows
    recipes = recipes_with_runs(args.root, args.results_dir)
    summary = report(args.root, args.results_dir, args.data_dir, args.seeds, recipes)
    print(summary["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How good is a mean-logit ensemble of teachers, as a classifier, against each teacher alone?

    python -m experiments.ensemble_teacher runs/suites/transfer/transfer-teacher-s0 \
        runs/suites/transfer/transfer-teacher-s1 runs/suites/transfer/transfer-teacher-s2

`--teacher a,b,c` distils from the mean of the teachers' logits; this scores that mean itself
on val and test (macro-F1, the emotion task's metric), beside each teacher, so a student's
figure can be read against the teacher it actually learnt from. All runs must share one
dataset and label order. Logits in fp32 (train.py's own test figure runs under the run's
precision, so a teacher's row here can differ from its results.json in the last digits).
Writes experiments/results/ensemble_teacher.json.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from torchmetrics.functional.classification import multiclass_f1_score

from benchmarks.common import write_result
from experiments.split_logits import SplitLogits, run_split_logits

EXPERIMENT_RESULTS = Path(__file__).with_name("results")
SPLITS = ("validation", "test")


def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(multiclass_f1_score(logits, labels, logits.shape[1], average="macro"))


def mean_logits(scored: list[SplitLogits], split: str) -> torch.Tensor:
    """The ensemble's logits: the plain mean, as distill/teacher_cache.ensemble_teacher_logits takes it."""
    first = scored[0]
    for other in scored[1:]:
        if other.label_names != first.label_names or not torch.equal(other.labels[split], first.labels[split]):
            raise SystemExit("the runs were not trained on the same dataset and label order; an ensemble of them "
                             "has no meaning")
    return torch.stack([s.logits[split] for s in scored]).mean(0)


def score(runs: list[Path]) -> dict:
    scored = [run_split_logits(run, SPLITS) for run in runs]
    rows = {str(run): {split: macro_f1(s.logits[split], s.labels[split]) for split in SPLITS}
            for run, s in zip(runs, scored)}
    alone = {split: statistics.mean(row[split] for row in rows.values()) for split in SPLITS}
    ensemble = {split: macro_f1(mean_logits(scored, split), scored[0].labels[split]) for split in SPLITS}
    return {"runs": rows, "mean_of_teachers": alone, "ensemble": ensemble}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished teacher run directories (results.json + model/)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if len(args.runs) < 2:
        p.error("an ensemble needs at least two runs")
    torch.set_num_threads(args.threads)
    result = score(args.runs)
    print("| teacher | val macro-F1 | test macro-F1 |\n|---|---|---|")
    for run, row in result["runs"].items():
        print(f"| {run} | {row['validation']:.4f} | {row['test']:.4f} |")
    for name in ("mean_of_teachers", "ensemble"):
        row = result[name]
        print(f"| {name.replace('_', ' ')} | {row['validation']:.4f} | {row['test']:.4f} |")
    args.runs = [str(run) for run in args.runs]
    print(write_result("ensemble_teacher", args, result, EXPERIMENT_RESULTS))


if __name__ == "__main__":
    main()

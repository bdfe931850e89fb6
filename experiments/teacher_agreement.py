"""Does a student trained on more teacher-labelled text copy its teacher better, and does that
carry over to the labels?

    python -m experiments.teacher_agreement runs/suites/transfer/transfer-teacher-s0 \
        runs/suites/transfer/kd-0-s0 runs/suites/transfer/kd-30k-s0 [RUN ...]

For each student: test macro-F1 against the gold labels, top-1 agreement with the teacher
(the share of test tweets where both pick the same label) and the mean KL(teacher || student)
of their softmaxes at T=1. A transfer set is meant to raise agreement (fidelity); whether
macro-F1 follows is the separate question (Stanton et al., 2021, "Does knowledge distillation
really work?"). A comma-separated first argument scores against the teachers' mean logits.
Writes experiments/results/teacher_agreement.json (--name: another file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import write_result
from experiments.ensemble_teacher import macro_f1, mean_logits
from experiments.split_logits import run_split_logits

EXPERIMENT_RESULTS = Path(__file__).with_name("results")


def agreement(teacher: torch.Tensor, student: torch.Tensor) -> dict[str, float]:
    """Top-1 agreement and mean KL(teacher || student) of two sets of logits for the same texts."""
    kl = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="batchmean")
    return {"agreement": float((teacher.argmax(-1) == student.argmax(-1)).float().mean()), "kl": float(kl)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("teacher", help="the teacher's run directory (a,b,c: the mean of several)")
    p.add_argument("students", nargs="+", type=Path, help="finished student run directories")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="teacher_agreement", help="writes experiments/results/NAME.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    teachers = [run_split_logits(Path(t), ("test",)) for t in args.teacher.split(",")]
    teacher = mean_logits(teachers, "test")
    gold = teachers[0].labels["test"]
    rows = {"teacher": {"test_macro_f1": macro_f1(teacher, gold), "agreement": 1.0, "kl": 0.0}}
    for run in args.students:
        student = run_split_logits(run, ("test",))
        if student.label_names != teachers[0].label_names or not torch.equal(student.labels["test"], gold):
            raise SystemExit(f"{run}: not the teacher's dataset and label order")
        rows[str(run)] = {"test_macro_f1": macro_f1(student.logits["test"], gold),
                          **agreement(teacher, student.logits["test"])}
    print("| run | test macro-F1 | agreement with teacher | KL(teacher ‖ student) |\n|---|---|---|---|")
    for run, row in rows.items():
        print(f"| {run} | {row['test_macro_f1']:.4f} | {row['agreement']:.4f} | {row['kl']:.4f} |")
    args.students = [str(run) for run in args.students]
    print(write_result(args.name, args, {"runs": rows}, EXPERIMENT_RESULTS))


if __name__ == "__main__":
    main()

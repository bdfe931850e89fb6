"""Would correcting finished single-label runs' logits for the label priors raise their macro-F1?

    python -m experiments.logit_adjustment runs/suites/cross-tokenizer/minilm-ce-s0 [RUN ...]

Logit adjustment (Menon et al., ICLR 2021) predicts argmax(z - tau * log prior), with the
prior the training split's label frequencies; tau = 1 is the correction that is optimal for
balanced error. Macro-F1 weighs a rare class (TweetEval emotion's "optimism": 9% of train)
as much as a common one, so a model trained for plain cross-entropy may leave macro-F1 on
the table, and this measures how much, with no retraining. Prints val and test macro-F1 for
each tau and run, and the mean over runs; writes experiments/results/logit_adjustment.json.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from torchmetrics.functional.classification import multiclass_f1_score

from benchmarks.common import write_result
from experiments.split_logits import run_split_logits

TAUS = (0.0, 0.5, 1.0)

EXPERIMENT_RESULTS = Path(__file__).with_name("results")


def adjusted_macro_f1(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor, tau: float) -> float:
    return float(multiclass_f1_score(logits - tau * log_prior, labels, logits.shape[1], average="macro"))


def score_run(run_dir: Path) -> dict[str, float]:
    scored = run_split_logits(run_dir)
    log_prior = (scored.train_counts / scored.train_counts.sum()).clamp(min=1e-8).log()
    return {f"{split[:4]}@tau={tau:g}": adjusted_macro_f1(scored.logits[split], scored.labels[split], log_prior, tau)
            for split in ("validation", "test") for tau in TAUS}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished run directories (results.json + model/)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = {str(run): score_run(run) for run in args.runs}
    columns = list(next(iter(rows.values())))
    print("| run | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for run, scores in rows.items():
        print(f"| {run} | " + " | ".join(f"{scores[c]:.4f}" for c in columns) + " |")
    means = {c: statistics.mean(s[c] for s in rows.values()) for c in columns}
    print("| mean | " + " | ".join(f"{means[c]:.4f}" for c in columns) + " |")
    args.runs = [str(run) for run in args.runs]
    print(write_result("logit_adjustment", args, {"runs": rows, "mean": means}, EXPERIMENT_RESULTS))


if __name__ == "__main__":
    main()

"""What did the teacher make of a student's transfer set? Its top label on each transfer text and
how sure it was, beside the labelled training set's own label shares.

    python -m experiments.pool_labels runs/suites/transfer-tasks/hate-kd-all-1ep-s0 \
        runs/suites/transfer-tasks/irony-kd-all-1ep-s0 runs/suites/transfer/kd-all-1ep-s0

A transfer set teaches through the teacher's soft labels; if nearly every text gets one label
with near-certainty, it adds little beyond a prior for that label. The logits are the ones the
run trained on: the same texts, teacher(s), max length and precision, read from the teacher-logit
cache (whatever is missing there is computed again, with a progress bar).
Writes experiments/results/pool_labels.json (--name: another file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.common import write_result
from experiments.split_logits import run_datamodule

EXPERIMENT_RESULTS = Path(__file__).with_name("results")
SURE = 0.9  # a top softmax probability above this counts as sure


def label_profile(logits: torch.Tensor, label_names: list[str], sure: float = SURE) -> dict:
    """Share of texts whose top label is each label, and share whose top probability is above ``sure``."""
    top = torch.bincount(logits.argmax(-1), minlength=len(label_names)).float() / len(logits)
    return {"texts": len(logits), "top_label_share": dict(zip(label_names, top.tolist())),
            "sure_share": float((logits.float().softmax(-1).max(-1).values > sure).float().mean())}


def transfer_logits(run_dir: Path) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(label names, training examples per label, the teacher's logits on the run's transfer texts)."""
    from tweetcls.distill.student import teacher_model_dir
    from tweetcls.distill.teacher_cache import ensemble_teacher_logits
    from tweetcls.distill.transfer_set import transfer_set
    from tweetcls.core.build import load_tokenizer
    from tweetcls.core.results_file import read_results

    results = read_results(run_dir)
    config = results.get("config", {})
    if not config.get("transfer_data"):
        raise SystemExit(f"{run_dir}: not trained with --transfer-data")
    datamodule = run_datamodule(results, load_tokenizer(run_dir / "model"))
    data = datamodule.load()
    datamodule.setup()
    labelled = list(datamodule.texts["train"])
    task = {name: list(split["text"]) for name, split in data.splits.items()}
    extra = transfer_set(config["transfer_data"], datamodule.data_dir, config.get("transfer_samples"), task).texts
    teachers = [teacher_model_dir(t) for t in config["teacher"].split(",")]
    # the run's own training rows, so every chunk is the one it cached: labelled texts first
    logits, _ = ensemble_teacher_logits(teachers, labelled + extra, datamodule.label_names, datamodule.max_length,
                                        results.get("precision", "32-true"))
    counts = torch.bincount(torch.tensor(datamodule.encoded["train"]["label"]), minlength=len(datamodule.label_names))
    return list(datamodule.label_names), counts, logits[len(labelled):]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished student runs trained with --transfer-data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="pool_labels", help="writes experiments/results/NAME.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    print("| run | transfer texts | teacher's top label (share) | sure (p > 0.9) | training labels (share) |\n"
          "|---|---|---|---|---|")
    for run in args.runs:
        names, counts, logits = transfer_logits(run)
        row = label_profile(logits, names) | {"train_label_share": dict(zip(names, (counts / counts.sum()).tolist()))}
        rows[str(run)] = row
        shares = ", ".join(f"{k} {v:.3f}" for k, v in row["top_label_share"].items())
        train = ", ".join(f"{k} {v:.3f}" for k, v in row["train_label_share"].items())
        print(f"| {run} | {row['texts']} | {shares} | {row['sure_share']:.3f} | {train} |")
    args.runs = [str(run) for run in args.runs]
    print(write_result(args.name, args, {"runs": rows}, EXPERIMENT_RESULTS))


if __name__ == "__main__":
    main()

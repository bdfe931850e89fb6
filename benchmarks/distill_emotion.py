"""TweetEval emotion: MPNet-12 teacher, odd/even 6-layer students with KD, and a MiniLM-L6
student with its own tokenizer. Resumable: a run whose results.json exists is skipped.

    python benchmarks/distill_emotion.py [--out runs/distill-emotion] [--epochs 3]

Prints a Markdown table (test macro-F1, parameters, training time) and writes it to
OUT/summary.md and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/distill-emotion")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    teacher = out / "teacher-mpnet12"
    common = ["--dataset", "tweet_eval/emotion", "--output-dir", str(out), "--seed", str(args.seed),
              "--max-epochs", str(args.epochs), "--no-progress-bar"]
    runs = {
        "teacher-mpnet12": ["--method", "teacher"],
        "student-odd-kd": ["--method", "distill", "--teacher", str(teacher), "--layers", "odd"],
        "student-even-kd": ["--method", "distill", "--teacher", str(teacher), "--layers", "even"],
        "student-minilm-kd": ["--method", "distill", "--teacher", str(teacher), "--student", "minilm-l6",
                              "--lr", "1e-4"],
    }
    for name, flags in runs.items():
        if (out / name / "results.json").exists():
            print(f"skip {name}: finished", file=sys.stderr)
            continue
        cmd = [sys.executable, str(REPO / "train.py"), *flags, *common, "--run-name", name, "--overwrite"]
        print("run:", " ".join(cmd[1:]), file=sys.stderr)
        subprocess.run(cmd, check=True)

    rows = []
    base = json.loads((teacher / "results.json").read_text())
    for name in runs:
        r = json.loads((out / name / "results.json").read_text())
        info = r.get("distill") or {}
        layers = info.get("layers") or ("own model" if info.get("student") else "all 12")
        rows.append({"run": name, "layers": layers,
                     "params": r["params_total"], "params_vs_teacher": r["params_total"] / base["params_total"],
                     "test_macro_f1": r["test"]["task_metric"], "f1_vs_teacher": r["test"]["task_metric"] / base["test"]["task_metric"],
                     "fit_seconds": r["fit_seconds"], "train_samples_per_sec": r["train_samples_per_sec"],
                     "epochs": r["epochs"], "lr": r["config"]["lr"], "machine": r["environment"]["platform"],
                     "date": r["environment"]["created_utc"][:10]})
    lines = ["| run | layers | params | vs teacher | test macro-F1 | vs teacher | train s | samples/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['layers']} | {r['params']:,} | {r['params_vs_teacher']:.2f} | "
                     f"{r['test_macro_f1']:.4f} | {r['f1_vs_teacher']:.3f} | {r['fit_seconds']:.0f} | "
                     f"{r['train_samples_per_sec']:.1f} |")
    table = "\n".join(lines)
    print(table)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

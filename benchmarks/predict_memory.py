"""Peak memory of predict.py on a long input file: it streams, so the peak must not grow with the file.

    python -m benchmarks.predict_memory [--lines 1000000] [--run RUN_DIR] [--predict OTHER/predict.py]

Writes --lines tweet-like texts to a .txt file, runs ``predict.py RUN --input it --output
out.csv`` in a process of its own and reports that process's peak resident memory (the
kernel's ru_maxrss of the child), the same for a 10-line file (the libraries and the model,
which any input costs) and the rows written. Without --run it first trains the
tests' tiny random BERT for one epoch (seconds): the model's own memory is then a few MB, so
the figure is what predict.py holds per text. --predict runs another copy of predict.py (e.g.
an older commit's checkout) on the same files, for a before/after pair. Issue 46's target:
<= 500 MB for 1M lines (the version that held the whole input peaked at 2.86 GB).
Writes benchmarks/results/predict_memory.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parents[1]


def tiny_run(folder: Path) -> Path:
    """A finished one-epoch LoRA run of the tests' tiny model on their tiny CSV."""
    import csv

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_model_dir, make_texts

    model = build_tiny_model_dir(folder / "tiny-bert")
    data = folder / "tiny.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *make_texts(120)])
    subprocess.run([sys.executable, str(REPO / "train.py"), "--model", str(model), "--dataset", str(data),
                    "--output-dir", str(folder / "runs"), "--run-name", "run", "--max-epochs", "1",
                    "--batch-size", "16", "--no-progress-bar"], check=True, capture_output=True)
    return folder / "runs" / "run"


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """(peak resident MB, seconds) of ``command`` run as the only child of a fresh Python process."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True)
    kilobytes, seconds = out.stdout.split()
    return int(kilobytes) / 1024, float(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--run", default=None, help="a run directory (default: a tiny model trained here)")
    p.add_argument("--predict", default=str(REPO / "predict.py"), help="the predict.py to measure")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backend", default="torch", help="any predict.py --backend the run has (onnx: export first)")
    args = p.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_texts

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = Path(args.run) if args.run else tiny_run(folder)
        texts = [text for text, _ in make_texts(1000)]
        source = folder / "in.txt"
        with open(source, "w", encoding="utf-8") as f:
            for i in range(args.lines):
                f.write(f"{texts[i % len(texts)]} #{i}\n")
        few = folder / "few.txt"
        few.write_text("".join(f"{t}\n" for t in texts[:10]), encoding="utf-8")
        out = folder / "out.csv"
        os.environ["TOKENIZERS_PARALLELISM"] = "false"

        def measure(path: Path) -> tuple[float, float]:
            return peak_rss_mb([sys.executable, args.predict, str(run), "--input", str(path), "--output", str(out),
                                "--no-progress-bar", "--threads", str(args.threads), "--backend", args.backend])

        floor, _ = measure(few)  # the libraries and the model: what any input costs
        peak, seconds = measure(source)
        with open(out, encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
    result = {"lines": args.lines, "rows_written": rows, "peak_rss_mb": round(peak, 1),
              "peak_rss_mb_10_lines": round(floor, 1), "growth_mb": round(peak - floor, 1),
              "seconds": round(seconds, 1), "backend": args.backend,
              "model": "tests' tiny random BERT (hidden 32, 2 layers)" if not args.run else args.run,
              "predict": os.path.relpath(args.predict, REPO)}
    print(result)
    write_result("predict_memory", args, result)


if __name__ == "__main__":
    main()

"""Prediction backends side by side on one trained run: size, single-text latency, batch
throughput, test metric, and a 10,000-line file through predict.py.

    python -m benchmarks.predict_backends runs/<run> [--threads 2]

In one process, one backend after the other: ``torch`` (fp32), ``int8`` (torch dynamic),
``onnx``, ``onnx-int8`` and ``onnx-int8-static`` (ONNX Runtime; exported into the run on first use).
- single text: one tweet at a time through ``Predictor.predict`` (tokenize, forward,
  probabilities), as a web service pays per request: p50 and p99 over the test tweets;
- batch: the forward pass alone on a fixed random batch (--batch x --seq), as in the ledger;
- test metric: the run's task metric on its test split through the backend, and its change;
- file: ``predict.py --input`` on --file-lines test tweets repeated, in a child process:
  texts/s and the child's peak resident memory (VmHWM).
Writes benchmarks/results/predict_backends.json.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import parser, random_batch, write_result
from tweetcls.core.backends import BACKENDS



def size_mb(run_dir: Path, backend: str, predictor) -> float:
    if backend in ("torch", "bf16"):  # bf16 runs the fp32 weights under autocast
        return (run_dir / "model" / "model.safetensors").stat().st_size / 1e6
    if backend.startswith("onnx"):
        name = {"onnx-int8": "model-int8.onnx", "onnx-int8-static": "model-int8-static.onnx"}.get(backend, "model.onnx")
        return (run_dir / "onnx" / name).stat().st_size / 1e6
    from tweetcls.compress.dynamic_int8 import quantize_int8, save_int8
    from tweetcls import load_run

    with tempfile.TemporaryDirectory() as tmp:
        save_int8(quantize_int8(load_run(run_dir).model), Path(tmp))
        return sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors")) / 1e6


def single_text_ms(predictor, texts: list[str]) -> tuple[float, float]:
    for text in texts[:20]:
        predictor.predict([text])
    times = []
    for text in texts:
        start = time.perf_counter()
        predictor.predict([text])
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), statistics.quantiles(times, n=100)[98]


def batch_throughput(predictor, vocab_size: int, batch: int, seq: int, iters: int) -> float:
    inputs = {name: tensor.numpy() for name, tensor in random_batch(vocab_size, batch, seq).items()}
    inputs["token_type_ids"] = torch.zeros(batch, seq, dtype=torch.long).numpy()  # a forward takes what it needs
    for _ in range(3):
        predictor.forward(inputs)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        predictor.forward(inputs)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def test_metric(predictor, data) -> float:
    from tweetcls.core.metrics import build_metrics, metric_scalars

    test = data.splits["test"]
    probs = torch.from_numpy(predictor.probabilities(list(test["text"])))
    metrics = build_metrics(len(data.label_names), data.multi_label, predictor.threshold or 0.5)
    metrics.update(probs, torch.tensor(test["label"]).long())
    return metric_scalars(metrics.compute(), data.label_names, data.metric, data.metric_classes)["task_metric"]


def file_run(run_dir: Path, backend: str, texts: list[str], lines: int, threads: int) -> dict:
    """predict.py on a file in a child process: texts/s and peak memory of that process."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.txt"
        source.write_text("\n".join((texts * (lines // len(texts) + 1))[:lines]) + "\n")
        start = time.perf_counter()
        argv = [str(run_dir), "--backend", backend, "--input", str(source), "--output", str(Path(tmp) / "out.csv"),
                "--threads", str(threads), "--no-progress-bar"]
        child = subprocess.run([sys.executable, "-c", PEAK_RSS_LAUNCHER, *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"predict.py failed for {backend}: {child.stderr[-500:]}")
    peak_kb = int(child.stderr.strip().splitlines()[-1].split()[-1])
    return {"file_lines": lines, "file_seconds_incl_startup": seconds, "file_texts_per_s": lines / seconds,
            "file_peak_rss_mb": peak_kb / 1024}


# predict.py's own peak memory: VmHWM of its process image (a fork's ru_maxrss would count the
# memory this benchmark process had when it forked)
PEAK_RSS_LAUNCHER = """
import sys, predict
try:
    code = predict.main(sys.argv[1:])
finally:
    peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    print("peak_rss_kb", peak, file=sys.stderr)
sys.exit(code)
"""


def main() -> None:
    p = parser(__doc__)
    p.add_argument("run", type=Path, help="a finished run directory")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--single-texts", type=int, default=300)
    p.add_argument("--file-lines", type=int, default=10_000)
    p.add_argument("--backends", default=",".join(BACKENDS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from tweetcls import Predictor
    from tweetcls.loader import load_run_data
    from tweetcls.core.results_file import read_results

    results = read_results(args.run)
    data = load_run_data(results)
    tweets = list(data.splits["test"]["text"])
    rows = []
    for backend in args.backends.split(","):
        predictor = Predictor.from_run(args.run, backend=backend, threads=args.threads)
        p50, p99 = single_text_ms(predictor, tweets[:args.single_texts])
        row = {"backend": backend, "size_mb": size_mb(args.run, backend, predictor),
               "single_p50_ms": p50, "single_p99_ms": p99,
               "batch_texts_per_s": batch_throughput(predictor, predictor.encoder.tokenizer.get_vocab_size(), args.batch, args.seq,
                                                     args.iters),
               "test_metric": test_metric(predictor, data)}
        row |= file_run(args.run, backend, tweets, args.file_lines, args.threads)
        rows.append(row)
        print(row, file=sys.stderr)
    base = rows[0]
    for row in rows:
        row["speedup_batch"] = row["batch_texts_per_s"] / base["batch_texts_per_s"]
        row["delta_points"] = 100 * (row["test_metric"] - base["test_metric"])
    head = "| backend | size MB | 1 text p50 ms | 1 text p99 ms | batch texts/s | × fp32 | test metric | Δ points | file texts/s | peak MB |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['size_mb']:.1f} | {r['single_p50_ms']:.2f} | {r['single_p99_ms']:.2f} "
                     f"| {r['batch_texts_per_s']:.0f} | {r['speedup_batch']:.2f} | {r['test_metric']:.4f} "
                     f"| {r['delta_points']:+.2f} | {r['file_texts_per_s']:.0f} | {r['file_peak_rss_mb']:.0f} |")
    print("\n".join(lines))
    args.run = str(args.run)
    print(write_result("predict_backends", args, {"task_metric": results["task_metric"], "rows": rows,
                                                  "table": "\n".join(lines)}))


if __name__ == "__main__":
    main()

"""Where one tweet's time goes through ``Predictor.predict``: tokenizing, padding, the model,
the decision, per backend and thread count.

    python -m benchmarks.single_text runs/<run> [--backends onnx-int8,onnx-int8-static] [--thread-counts 1,2]

Each part is timed alone over the same --texts test tweets (p50, ms), after 20 warm-up calls;
"predict" is the whole call, so predict minus the parts is Python's own overhead. Writes
benchmarks/results/single_text.json.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import parser, write_result


def p50_ms(fn, items: list) -> float:
    for item in items[:20]:
        fn(item)
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("run", type=Path)
    p.add_argument("--backends", default="onnx-int8,onnx-int8-static,onnx,torch")
    p.add_argument("--thread-counts", default="1,2")
    p.add_argument("--texts", type=int, default=300)
    args = p.parse_args()
    from tweetcls import Predictor
    from tweetcls.loader import load_run_data
    from tweetcls.core.results_file import read_results

    tweets = list(load_run_data(read_results(args.run)).splits["test"]["text"])[:args.texts]
    rows = []
    for backend in args.backends.split(","):
        for threads in (int(t) for t in args.thread_counts.split(",")):
            predictor = Predictor.from_run(args.run, backend=backend, threads=threads)
            encoded = {t: predictor.encoder.encode([t]) for t in tweets}
            padded = {t: predictor.encoder.pad(encoded[t]) for t in tweets}
            logits = {t: predictor.forward(padded[t]) for t in tweets}
            row = {"backend": backend, "threads": threads,
                   "predict_ms": p50_ms(lambda t: predictor.predict([t]), tweets),
                   "tokenize_ms": p50_ms(lambda t: predictor.encoder.encode([t]), tweets),
                   "pad_ms": p50_ms(lambda t: predictor.encoder.pad(encoded[t]), tweets),
                   "model_ms": p50_ms(lambda t: predictor.forward(padded[t]), tweets),
                   "decide_ms": p50_ms(lambda t: predictor._decide(predictor.probabilities_from(logits[t])[0], None),
                                       tweets)}
            row["python_ms"] = row["predict_ms"] - row["tokenize_ms"] - row["pad_ms"] - row["model_ms"] - row["decide_ms"]
            rows.append(row)
            print(row, file=sys.stderr)
    lines = ["| backend | threads | predict p50 ms | tokenize | pad | model | decide | rest (Python) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['threads']} | {r['predict_ms']:.2f} | {r['tokenize_ms']:.3f} "
                     f"| {r['pad_ms']:.3f} | {r['model_ms']:.2f} | {r['decide_ms']:.3f} | {r['python_ms']:.3f} |")
    print("\n".join(lines))
    args.run = str(args.run)
    print(write_result("single_text", args, {"rows": rows, "table": "\n".join(lines)}))


if __name__ == "__main__":
    main()

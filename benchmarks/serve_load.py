"""A bounded load test of serve.py on loopback, per backend, beside predict's batch throughput.

    python -m benchmarks.serve_load runs/<run> [--backends torch,onnx-int8] [--clients 16] [--requests 40]

For each backend: serve.py starts on a free 127.0.0.1 port; --clients threads each send
--requests POST /predict requests of 1-8 test tweets (seeded), one after the other; then the
server is stopped. Reported: requests/s, texts/s, request latency p50/p99, errors (must be 0),
and texts/s of the same texts through ``Predictor.predict`` in batches of 64 in this process
(what predict.py does), with the ratio (target >= 0.7). Writes benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from benchmarks.common import parser, write_result


def client(url: str, batches: list[list[str]], latencies: list[float], errors: list[str]) -> None:
    for texts in batches:
        request = urllib.request.Request(url + "/predict", data=json.dumps({"texts": texts}).encode(),
                                         headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.loads(response.read())
            if len(answer["predictions"]) != len(texts):
                errors.append("wrong number of predictions")
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(str(err))
        latencies.append(1000 * (time.perf_counter() - start))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("run", type=Path)
    p.add_argument("--backends", default="torch,onnx-int8")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=40, help="per client")
    p.add_argument("--window-ms", type=float, default=5.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from benchmarks.live_server import live_server
    from tweetcls import Predictor
    from tweetcls.loader import load_run_data
    from tweetcls_core.runs import read_results

    tweets = list(load_run_data(read_results(args.run)).splits["test"]["text"])
    rng = random.Random(0)
    plan = [[[rng.choice(tweets) for _ in range(rng.randint(1, 8))] for _ in range(args.requests)]
            for _ in range(args.clients)]
    all_texts = [t for batches in plan for texts in batches for t in texts]
    rows = []
    for backend in args.backends.split(","):
        predictor = Predictor.from_run(args.run, backend=backend)
        predictor.predict(all_texts[:64])
        start = time.perf_counter()
        predictor.predict(all_texts)
        batch_tps = len(all_texts) / (time.perf_counter() - start)
        del predictor
        with live_server(args.run, "--backend", backend, "--batch-window-ms", str(args.window_ms)) as url:
            client(url, plan[0][:3], [], [])  # warm-up
            latencies: list[float] = []
            errors: list[str] = []
            threads = [threading.Thread(target=client, args=(url, batches, latencies, errors)) for batches in plan]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - start
        row = {"backend": backend, "clients": args.clients, "requests": len(latencies), "texts": len(all_texts),
               "seconds": seconds, "requests_per_s": len(latencies) / seconds,
               "texts_per_s": len(all_texts) / seconds, "p50_ms": statistics.median(latencies),
               "p99_ms": statistics.quantiles(latencies, n=100)[98], "errors": len(errors),
               "predict_batch_texts_per_s": batch_tps}
        row["ratio_to_batch"] = row["texts_per_s"] / batch_tps
        rows.append(row)
        print(row, file=sys.stderr)
    lines = ["| backend | clients | requests | req/s | texts/s | p50 ms | p99 ms | errors | predict batch texts/s | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['clients']} | {r['requests']} | {r['requests_per_s']:.1f} "
                     f"| {r['texts_per_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} "
                     f"| {r['predict_batch_texts_per_s']:.0f} | {r['ratio_to_batch']:.2f} |")
    print("\n".join(lines))
    args.run = str(args.run)
    print(write_result("serve_load", args, {"rows": rows, "table": "\n".join(lines)}))


if __name__ == "__main__":
    main()

"""A bounded load test of serve.py on loopback, per backend, beside predict's batch throughput.

    python -m benchmarks.serve_load runs/<run> [--backends torch,onnx-int8] [--workers 1,2]
        [--clients 16] [--requests 40] [--client-mode threads,processes]

For each backend and worker count: serve.py starts on a free 127.0.0.1 port (--workers W, the
cores divided among them); --clients clients each send --requests POST /predict requests of 1-8
test tweets (seeded), one after the other; then the server is stopped. Clients run as threads
of this process or as separate processes; where the machine has 4 or more cores, client
processes are pinned to the upper half and the server to the lower half (on 2 cores nothing is
pinned: the clients share the server's cores, and the table says so). Reported: requests/s,
texts/s, request latency p50/p99, errors (must be 0), and texts/s of the same texts through
``Predictor.predict`` in batches of 64 with --threads threads (what predict.py does), with the
ratio (target >= 0.7). Writes benchmarks/results/serve_load.json.

Wall-clock ratios on 2 cores shared with the clients measure the clients as much as the server, so
each row also has the server's own CPU time per text (user + system of the server process and its
workers, from /proc, over the load) beside ``Predictor.predict``'s CPU time per text for the same
texts on the same backend (``time.process_time``, all its threads): their ratio is what serving
costs over predict.py, whoever else is on the machine (issue 49: target <= 1.4).
"""

from __future__ import annotations

import json
import multiprocessing
import os
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


def client_process(job: tuple[str, list[list[str]], list[int] | None]) -> tuple[list[float], list[str]]:
    url, batches, cpus = job
    if cpus:
        os.sched_setaffinity(0, cpus)
    latencies: list[float] = []
    errors: list[str] = []
    client(url, batches, latencies, errors)
    return latencies, errors


def load(url: str, plan: list[list[list[str]]], mode: str, cpus: list[int] | None) -> tuple[list[float], list[str], float]:
    """Every client's requests at once: (latencies, errors, seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    if mode == "processes":
        with multiprocessing.get_context("fork").Pool(len(plan)) as pool:
            for got, failed in pool.map(client_process, [(url, batches, cpus) for batches in plan]):
                latencies += got
                errors += failed
    else:
        threads = [threading.Thread(target=client, args=(url, batches, latencies, errors)) for batches in plan]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return latencies, errors, time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children now alive (uvicorn's workers), from /proc."""
    total = 0.0
    for one in [pid, *map(int, os.popen(f"pgrep -P {pid}").read().split())]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def main() -> None:
    p = parser(__doc__)
    p.add_argument("run", type=Path)
    p.add_argument("--backends", default="torch,onnx,onnx-int8-static")
    p.add_argument("--workers", default="1", help="comma-separated worker counts to compare")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=40, help="per client")
    p.add_argument("--window-ms", type=float, default=5.0)
    p.add_argument("--client-mode", default="threads", help="threads, processes, or both comma-separated")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from benchmarks.live_server import live_server
    from tweetcls import Predictor
    from tweetcls.loader import load_run_data
    from tweetcls.core.results_file import read_results

    tweets = list(load_run_data(read_results(args.run)).splits["test"]["text"])
    rng = random.Random(0)
    plan = [[[rng.choice(tweets) for _ in range(rng.randint(1, 8))] for _ in range(args.requests)]
            for _ in range(args.clients)]
    all_texts = [t for batches in plan for texts in batches for t in texts]
    cores = sorted(os.sched_getaffinity(0))
    pinned = len(cores) >= 4
    server_cpus, client_cpus = (cores[:len(cores) // 2], cores[len(cores) // 2:]) if pinned else (cores, None)
    rows = []
    for backend in args.backends.split(","):
        predictor = Predictor.from_run(args.run, backend=backend, threads=args.threads)
        predictor.predict(all_texts[:64])
        start, cpu = time.perf_counter(), time.process_time()
        predictor.predict(all_texts)
        batch_tps = len(all_texts) / (time.perf_counter() - start)
        predict_cpu_ms = 1000 * (time.process_time() - cpu) / len(all_texts)
        del predictor
        for workers in (int(w) for w in args.workers.split(",")):
            for mode in args.client_mode.split(","):
                flags = ["--backend", backend, "--batch-window-ms", str(args.window_ms), "--workers", str(workers)]
                if pinned:
                    flags += ["--threads", str(max(1, len(server_cpus) // workers))]
                with live_server(args.run, *flags) as url:
                    if pinned:
                        for pid in [url.pid, *map(int, os.popen(f"pgrep -P {url.pid}").read().split())]:
                            os.sched_setaffinity(pid, server_cpus)
                    client(url, plan[0][:3], [], [])  # warm-up
                    server_cpu = cpu_seconds(url.pid)
                    latencies, errors, seconds = load(url, plan, mode, client_cpus if mode == "processes" else None)
                    server_cpu = cpu_seconds(url.pid) - server_cpu
                row = {"backend": backend, "workers": workers, "client_mode": mode,
                       "pinned": f"server {server_cpus}, clients {client_cpus}" if pinned and mode == "processes"
                       else "no", "clients": args.clients, "requests": len(latencies), "texts": len(all_texts),
                       "seconds": seconds, "requests_per_s": len(latencies) / seconds,
                       "texts_per_s": len(all_texts) / seconds, "p50_ms": statistics.median(latencies),
                       "p99_ms": statistics.quantiles(latencies, n=100)[98], "errors": len(errors),
                       "predict_batch_texts_per_s": batch_tps, "server_cpu_ms_per_text": 1000 * server_cpu / len(all_texts),
                       "predict_cpu_ms_per_text": predict_cpu_ms}
                row["ratio_to_batch"] = row["texts_per_s"] / batch_tps
                row["cpu_ratio"] = row["server_cpu_ms_per_text"] / predict_cpu_ms
                rows.append(row)
                print(row, file=sys.stderr)
    lines = ["| backend | workers | clients as | pinned | clients | requests | req/s | texts/s | p50 ms | p99 ms "
             "| errors | predict batch texts/s | ratio | server CPU ms/text | predict CPU ms/text | CPU ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['workers']} | {r['client_mode']} | {r['pinned']} | {r['clients']} "
                     f"| {r['requests']} | {r['requests_per_s']:.1f} | {r['texts_per_s']:.0f} | {r['p50_ms']:.0f} "
                     f"| {r['p99_ms']:.0f} | {r['errors']} | {r['predict_batch_texts_per_s']:.0f} "
                     f"| {r['ratio_to_batch']:.2f} | {r['server_cpu_ms_per_text']:.2f} | {r['predict_cpu_ms_per_text']:.2f} "
                     f"| {r['cpu_ratio']:.2f} |")
    print("\n".join(lines))
    args.run = str(args.run)
    print(write_result("serve_load", args, {"rows": rows, "table": "\n".join(lines)}))


if __name__ == "__main__":
    main()

"""CPU inference latency of a model on a fixed random batch: one measurement for every
place that reports it (results.json, the compression ledger, the benchmarks, ``--compare``).

A single timing on a shared machine measures the machine's load as much as the model (the
same network once read 1,662 ms after full fine-tuning and 86 ms after LoRA), so a run's
latency is many forward passes in several rounds: the median with its spread (p10 to p90),
the fastest pass (the least disturbed one), and the load average before and after, so a
number taken under load says so."""

from __future__ import annotations

import os
import statistics
import time

import torch
from torch import nn


@torch.inference_mode()
def measure_latency(model: nn.Module, vocab_size: int, batch_size: int = 32, seq_len: int = 64,
                    warmup: int = 5, iters: int = 20, seed: int = 0) -> dict[str, float]:
    """Forward-pass latency on a fixed random batch, after warm-up: p50, p90, min and samples/s."""
    return summarise(time_passes(model, random_inputs(vocab_size, batch_size, seq_len, seed), warmup, iters),
                     batch_size)


def random_inputs(vocab_size: int, batch_size: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab_size, (batch_size, seq_len), generator=gen)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


@torch.inference_mode()
def time_passes(model: nn.Module, inputs: dict, warmup: int, iters: int) -> list[float]:
    """Seconds of each of ``iters`` forward passes after ``warmup`` untimed ones."""
    model.eval()
    for _ in range(warmup):
        model(**inputs)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        model(**inputs)
        times.append(time.perf_counter() - start)
    return times


def summarise(times: list[float], batch_size: int) -> dict[str, float]:
    """p50 (the figure compared), p10 and p90 (its spread), the fastest pass, samples/s at p50."""
    p50 = statistics.median(times)
    deciles = statistics.quantiles(times, n=10, method="inclusive") if len(times) >= 2 else [p50] * 9
    return {"latency_p50_ms": 1000 * p50, "latency_p10_ms": 1000 * deciles[0], "latency_p90_ms": 1000 * deciles[-1],
            "latency_min_ms": 1000 * min(times), "passes": len(times), "throughput_per_s": batch_size / p50}


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def cpu_latency(model: nn.Module, precision: str = "32-true", batch_size: int = 32, seq_len: int = 64,
                rounds: int = 5, iters: int = 6) -> dict:
    """The figure results.json records: forward latency on the CPU, batch 32 x 64 random tokens,
    in the run's precision (bf16 autocast for a bf16 run), ``rounds`` x ``iters`` timed passes,
    with what was measured (batch, length, threads, backend) and the load around it."""
    from tweetcls.core.precision import Bf16Autocast, is_bf16

    model = model.cpu()
    timed = Bf16Autocast(model) if is_bf16(precision) else model
    inputs = random_inputs(model.config.vocab_size, batch_size, seq_len)
    load_before = load_average()
    time_passes(timed, inputs, warmup=2, iters=0)
    times = []
    for _ in range(rounds):  # rounds apart in time: a burst of load spoils one round, not the median
        times += time_passes(timed, inputs, warmup=0, iters=iters)
    return summarise(times, batch_size) | {
        "batch_size": batch_size, "seq_len": seq_len, "threads": torch.get_num_threads(),
        "backend": "torch", "precision": "bf16" if is_bf16(precision) else "fp32",
        "load_before": load_before, "load_after": load_average(), "cpus": os.cpu_count()}


def latency_label(inference: dict) -> str:
    """'35 ms (p10-p90 33-40)': the median and its spread, as every table and card prints it."""
    p50 = inference["latency_p50_ms"]
    if "latency_p10_ms" not in inference:  # a run from before repeated measurement: one figure, no spread
        return f"{p50:.0f} ms"
    return f"{p50:.0f} ms ({inference['latency_p10_ms']:.0f}-{inference['latency_p90_ms']:.0f})"


def measured_label(inference: dict) -> str:
    """What was timed: 'batch 32x64, 2 threads, torch fp32, load 1.3 of 2 CPUs'."""
    text = (f"batch {inference['batch_size']}x{inference['seq_len']}, {inference['threads']} threads, "
            f"{inference.get('backend', 'torch')} {inference.get('precision', 'fp32')}")
    load = inference.get("load_before")
    return text + (f", load {load:.1f} of {inference['cpus']} CPUs" if load is not None and inference.get("cpus") else "")


def side_by_side(models: dict[str, tuple[nn.Module, str]], batch_size: int = 32, seq_len: int = 64,
                 rounds: int = 5, iters: int = 6) -> dict[str, dict]:
    """``cpu_latency`` of several models (name -> (model, precision)) in one process, their rounds
    taken in turn, so load that comes and goes falls on every model alike."""
    from tweetcls.core.precision import Bf16Autocast, is_bf16

    timed = {name: (Bf16Autocast(m.cpu()) if is_bf16(p) else m.cpu(), p,
                    random_inputs(m.config.vocab_size, batch_size, seq_len)) for name, (m, p) in models.items()}
    load_before = load_average()
    times: dict[str, list[float]] = {name: [] for name in timed}
    for name, (model, _, inputs) in timed.items():
        time_passes(model, inputs, warmup=2, iters=0)
    for _ in range(rounds):
        for name, (model, _, inputs) in timed.items():
            times[name] += time_passes(model, inputs, warmup=0, iters=iters)
    load_after = load_average()
    return {name: summarise(times[name], batch_size) | {
        "batch_size": batch_size, "seq_len": seq_len, "threads": torch.get_num_threads(), "backend": "torch",
        "precision": "bf16" if is_bf16(precision) else "fp32", "load_before": load_before, "load_after": load_after,
        "cpus": os.cpu_count()} for name, (_, precision, _) in timed.items()}

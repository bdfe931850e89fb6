"""CPU inference latency of a model on a fixed random batch: one measurement for every
place that reports it (results.json, the compression ledger, the benchmarks)."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.inference_mode()
def measure_latency(model: nn.Module, vocab_size: int, batch_size: int = 32, seq_len: int = 64,
                    warmup: int = 5, iters: int = 20, seed: int = 0) -> dict[str, float]:
    """Forward-pass latency on a fixed random batch, after warm-up: p50, p90 and samples/s."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab_size, (batch_size, seq_len), generator=gen)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    model.eval()
    for _ in range(warmup):
        model(**inputs)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        model(**inputs)
        times.append(time.perf_counter() - start)
    p50 = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else p50
    return {"latency_p50_ms": 1000 * p50, "latency_p90_ms": 1000 * p90, "throughput_per_s": batch_size / p50}


def cpu_latency(model: nn.Module, precision: str = "32-true") -> dict:
    """The figure results.json records: forward latency on the CPU, batch 32 x 64 random tokens,
    in the run's precision (bf16 autocast for a bf16 run)."""
    from tweetcls_core.precision import Bf16Autocast, is_bf16

    model = model.cpu()
    timed = Bf16Autocast(model) if is_bf16(precision) else model
    with torch.inference_mode():
        latency = measure_latency(timed, model.config.vocab_size, warmup=2, iters=10)
    return latency | {"batch_size": 32, "seq_len": 64, "threads": torch.get_num_threads(),
                      "precision": "bf16" if is_bf16(precision) else "fp32"}

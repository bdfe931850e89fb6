"""Where a LoRA layer's time goes on the CPU, and what the cheaper dropout mask saves.

    python -m benchmarks.dropout_speed [--batch 32 --seq 64 --threads 2]

Median ms (50 calls after 5 warm-up) on a batch x seq x 384 activation: torch's
nn.Dropout vs FastDropout (forward; forward + backward), and one LoRALinear (r=8) around a
frozen 384x384 Linear, forward + backward, with torch's dropout, ours, none, and the bare
Linear. Prints a table and writes benchmarks/results/dropout_speed.json.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from benchmarks.common import parser, write_result


def median_ms(fn, calls: int = 50, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    args = parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    from tweetcls.core.dropout import FastDropout
    from tweetcls.lora.layer import LoRALinear

    torch.manual_seed(0)
    x = torch.randn(args.batch, args.seq, 384, requires_grad=True)
    grad = torch.ones_like(x)
    result = {}
    for name, dropout in (("torch nn.Dropout", nn.Dropout(0.1)), ("FastDropout", FastDropout(0.1))):
        result[f"{name} forward"] = median_ms(lambda d=dropout: d(x))
        result[f"{name} forward+backward"] = median_ms(lambda d=dropout: d(x).backward(grad))
    base = nn.Linear(384, 384).requires_grad_(False)
    layers = {"LoRALinear, torch dropout": LoRALinear(base, 8, 16, 0.1),
              "LoRALinear, FastDropout (ours)": LoRALinear(base, 8, 16, 0.1),
              "LoRALinear, no dropout": LoRALinear(base, 8, 16, 0.0),
              "frozen Linear alone": base}
    layers["LoRALinear, torch dropout"].lora_dropout = nn.Dropout(0.1)
    for name, layer in layers.items():
        layer.train()
        result[f"{name} forward+backward"] = median_ms(lambda m=layer: m(x).backward(grad))
    print(f"batch {args.batch} x {args.seq} x 384, {args.threads} threads, median of 50")
    print("| measurement | ms |\n|---|---|")
    for name, ms in result.items():
        print(f"| {name} | {ms:.2f} |")
    write_result("dropout_speed", args, {"median_ms": result})


if __name__ == "__main__":
    main()

"""Int8 backends side by side: fp32 vs torch.ao dynamic int8 vs torchao (if installed).

    pip install torchao   # optional, only for this comparison
    python -m benchmarks.quantization_backends [--model minilm-l6] [--batch 32 --seq 64 --threads 2]

Prints a table (median forward latency, speed-up, max |logit - fp32|) and writes
benchmarks/results/quantization_backends.json. The choice in compress/dynamic_int8.py
rests on this measurement.
"""

from __future__ import annotations

import copy
import sys
import warnings

import torch

from benchmarks.common import classifier, parser, random_batch, write_result


def main() -> None:
    args = parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)

    from tweetcls.compress.dynamic_int8 import quantize_int8
    from tweetcls.core.latency import measure_latency

    fp32 = classifier(args.model).eval()
    inputs = random_batch(fp32.config.vocab_size, args.batch, args.seq)  # the batch measure_latency times
    with torch.inference_mode():
        reference = fp32(**inputs).logits

    variants = {"fp32": fp32, "torch.ao dynamic int8 (ours)": quantize_int8(fp32)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
        model = copy.deepcopy(fp32)
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        variants["torchao Int8DynamicActivationInt8Weight"] = model
    except ImportError:
        print("torchao not installed: pip install torchao to include it", file=sys.stderr)

    rows = []
    base = None
    for name, model in variants.items():
        seconds = measure_latency(model, fp32.config.vocab_size, args.batch, args.seq, iters=15)["latency_p50_ms"] / 1000
        base = base or seconds
        with torch.inference_mode():
            error = (model(**inputs).logits - reference).abs().max().item()
        rows.append({"backend": name, "median_ms": 1000 * seconds, "speedup": base / seconds, "max_abs_logit_diff": error})
    print(f"{args.model}, batch {args.batch}x{args.seq}, {args.threads} threads")
    print("| backend | median ms | speed-up | max abs logit diff |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['median_ms']:.1f} | {r['speedup']:.2f}x | {r['max_abs_logit_diff']:.4f} |")
    write_result("quantization_backends", args, {"rows": rows})


if __name__ == "__main__":
    main()

"""Int8 backends side by side: fp32 vs torch.ao dynamic int8 vs torchao (if installed).

    pip install torchao   # optional, only for this comparison
    python benchmarks/quantization_backends.py [--model minilm-l6] [--batch 32 --seq 64 --threads 2]

Prints a table (median forward latency, speed-up, max |logit - fp32|) and writes
benchmarks/results/quantization_backends.json. The choice in compress/dynamic_int8.py
rests on this measurement.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import warnings
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForSequenceClassification, logging

    from compress.dynamic_int8 import quantize_int8
    from compress.ledger import measure_latency
    from models.resolve import resolve_model

    logging.set_verbosity_error()
    fp32 = AutoModelForSequenceClassification.from_pretrained(resolve_model(args.model), num_labels=4).eval()
    # the same batch measure_latency builds (seed 0), so errors and timings refer to one input
    ids = torch.randint(5, fp32.config.vocab_size, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
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
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "quantization_backends.json").write_text(json.dumps({
        "date": date.today().isoformat(), "machine": f"{platform.machine()}, {platform.platform()}",
        "torch": torch.__version__, "config": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

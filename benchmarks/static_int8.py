"""Static int8 on one run: quality and speed for several calibration samples, beside fp32 and
dynamic int8, and whether a text's answer depends on its batch.

    python -m benchmarks.static_int8 runs/<run> [--seeds 42,0,1] [--texts 256] [--threads 2]

Each calibration seed draws another sample of --texts training texts (42 is what the backend
uses). Per row: test macro-F1 / task metric through ``Predictor`` (batches of 64 of sorted
lengths, as predict.py), its change against ONNX fp32, batch throughput on the fixed random
32 x 64 batch, and how much 300 test tweets' logits alone differ from theirs inside the
sorted batches (largest absolute difference; share of equal argmax). Writes benchmarks/results/static_int8.json.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import parser, write_result


def batch_throughput(path: Path, threads: int, batch: int, seq: int, iters: int = 20) -> float:
    from tweetcls.compress.onnx_files import onnx_session

    session = onnx_session(path, threads)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 20000, (batch, seq)).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
    for _ in range(3):
        session.run(None, feeds)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def row_for(path: Path, name: str, texts: list[str], labels: list[int], data, args) -> dict:
    import torch

    from tweetcls import Predictor
    from tweetcls.core.metrics import build_metrics, metric_scalars

    predictor = Predictor.from_run(path, threads=args.threads)
    logits = predictor.logits(texts)
    metrics = build_metrics(len(data.label_names), data.multi_label, 0.5)
    metrics.update(torch.from_numpy(predictor.probabilities(texts)), torch.tensor(labels).long())
    score = metric_scalars(metrics.compute(), data.label_names, data.metric, data.metric_classes)["task_metric"]
    alone = np.concatenate([predictor.logits([t]) for t in texts[:300]])
    return {"variant": name, "test_metric": score, "size_mb": path.stat().st_size / 1e6,
            "batch_texts_per_s": batch_throughput(path, args.threads, args.batch, args.seq),
            "alone_vs_batched_max_abs_logit_diff": float(np.abs(alone - logits[:300]).max()),
            "alone_vs_batched_argmax_agreement": float((alone.argmax(-1) == logits[:300].argmax(-1)).mean())}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("run", type=Path)
    p.add_argument("--seeds", default="42,0,1")
    p.add_argument("--texts", type=int, default=256)
    p.add_argument("--kept-fp32", default=None,
                   help="comma-separated node-name patterns to keep fp32 instead of the backend's KEPT_FP32 "
                        "(an ablation; e.g. attention/output/dense,pooler,classifier quantizes the FFN output)")
    args = p.parse_args()
    import tweetcls.compress.onnx_static

    if args.kept_fp32:
        tweetcls.compress.onnx_static.KEPT_FP32 = tuple(args.kept_fp32.split(","))
    from tweetcls.compress.onnx_export import export_onnx, quantize_onnx
    from tweetcls.compress.onnx_static import calibration_sample, quantize_onnx_static
    from tweetcls import load_run
    from tweetcls.loader import load_run_data

    run = load_run(args.run)
    data = load_run_data(run.results)
    train = list(data.splits["train"]["text"])
    texts, labels = list(data.splits["test"]["text"]), list(data.splits["test"]["label"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "onnx"
        export_onnx(run.model, run.tokenizer, folder, run.decision_rule())
        rows.append(row_for(folder / "model.onnx", "fp32", texts, labels, data, args))
        rows.append(row_for(quantize_onnx(folder), "dynamic int8", texts, labels, data, args))
        for seed in (int(s) for s in args.seeds.split(",")):
            copy = Path(tmp) / f"static-{seed}"
            shutil.copytree(folder, copy)
            start = time.perf_counter()
            path = quantize_onnx_static(copy, calibration_sample(train, args.texts, seed), run.tokenizer)
            row = row_for(path, f"static int8, calibration seed {seed}", texts, labels, data, args)
            rows.append(row | {"calibration_seconds": time.perf_counter() - start})
            print(rows[-1], file=sys.stderr)
    base = rows[0]
    lines = ["| variant | size MB | test metric | Δ points | batch texts/s | × ONNX fp32 | alone vs batched: max |Δ logit| "
             "| same label alone and batched |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        r["delta_points"] = 100 * (r["test_metric"] - base["test_metric"])
        r["speedup"] = r["batch_texts_per_s"] / base["batch_texts_per_s"]
        lines.append(f"| {r['variant']} | {r['size_mb']:.1f} | {r['test_metric']:.4f} | {r['delta_points']:+.2f} "
                     f"| {r['batch_texts_per_s']:.0f} | {r['speedup']:.2f} | {r['alone_vs_batched_max_abs_logit_diff']:.2g} "
                     f"| {r['alone_vs_batched_argmax_agreement']:.1%} |")
    print("\n".join(lines))
    args.run = str(args.run)
    kept = "-ablation" if args.kept_fp32 else ""
    print(write_result(f"static_int8{kept}", args, {"rows": rows, "table": "\n".join(lines)}))


if __name__ == "__main__":
    main()

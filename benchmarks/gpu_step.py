"""One training step on a GPU, fp32 / TF32 / bf16 autocast, outside Lightning, random weights.

benchmarks.gpu_check found ``--precision auto`` (bf16-mixed) slower than fp32 for MiniLM-L6
on an H100. This separates the causes: the same step in plain torch (no Lightning, no
train.py), for the full model and for our LoRA, at two batch sizes, timed with CUDA
synchronisation (median of --steps after warm-up), and the host time per step, which
shows whether the GPU waits for Python (launch-bound) rather than for arithmetic.

    python -m benchmarks.gpu_step --shapes DIR [--steps 20] [--out FILE.json]   # DIR from gpu_check --prepare
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch

MODES = ("fp32", "tf32", "bf16")


def make_model(shape_dir: Path, lora: bool):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tweetcls.lora.inject import default_targets, inject_lora, mark_only_lora_as_trainable

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(shape_dir, num_labels=4)
    model = AutoModelForSequenceClassification.from_config(config)
    if lora:
        inject_lora(model, default_targets(model), r=8, alpha=16, dropout=0.1)
        mark_only_lora_as_trainable(model)
    return model.cuda().train()


def time_steps(model, batch: dict, mode: str, steps: int, warmup: int = 5) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    cast = torch.autocast("cuda", dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()
    gpu, host = [], []
    for i in range(warmup + steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        optim.zero_grad(set_to_none=True)
        with cast:
            loss = model(**batch).loss
        loss.float().backward()
        optim.step()
        queued = time.perf_counter()
        torch.cuda.synchronize()
        done = time.perf_counter()
        if i >= warmup:
            host.append(queued - start)
            gpu.append(done - start)
    return {"step_ms": round(1000 * statistics.median(gpu), 2), "host_ms": round(1000 * statistics.median(host), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", type=Path, required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batches", default="32,256")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_step.json"))
    args = p.parse_args()
    from benchmarks.common import write_result

    rows = []
    for shape in ("minilm-l6", "mpnet-12"):
        for lora in (False, True):
            model = make_model(args.shapes / shape, lora)
            for batch_size in map(int, args.batches.split(",")):
                ids = torch.randint(5, model.config.vocab_size, (batch_size, args.seq),
                                    generator=torch.Generator().manual_seed(0)).cuda()
                batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                         "labels": torch.zeros(batch_size, dtype=torch.long, device="cuda")}
                for mode in MODES:
                    row = {"model": shape, "method": "lora" if lora else "full", "batch": batch_size, "mode": mode,
                           **time_steps(model, batch, mode, args.steps)}
                    rows.append(row)
                    print(row, flush=True)
    device = torch.cuda.get_device_name(0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print("wrote", write_result(args.out.stem, args, {"device": device, "rows": rows}, folder=args.out.parent))


if __name__ == "__main__":
    main()

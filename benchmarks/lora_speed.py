"""Our LoRA against peft's on the same model, side by side in one process.

    python -m benchmarks.lora_speed [--model minilm-l6] [--steps 20] [--batch 32 --seq 64 --threads 2]

1. identical logits after copying A and B into peft (max |diff|, must be <= 1e-5);
2. training step (forward + backward + AdamW) ours vs peft, interleaved, median of --steps
   after warm-up; ours again with the model's own dropouts made fast too, as train.py
   does by default; full fine-tuning too, for scale;
   and the "frozen floor": the base with no adapter but gradients through every layer,
   the least any LoRA on all layers can cost;
3. inference of the merged LoRA model vs the base model;
4. peak resident memory growth over 3 training steps, ours / peft / full, each in a fresh
   process (Linux /proc; LoRA here with fast dropout, as train.py trains).
Prints a table and writes benchmarks/results/lora_speed.json. Needs peft (pip install peft).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import classifier, parser, random_batch, write_result


def step_timer(model, batch, labels):
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step() -> float:
        start = time.perf_counter()
        optim.zero_grad(set_to_none=True)
        model(**batch, labels=labels).loss.backward()
        optim.step()
        return time.perf_counter() - start

    return step


def frozen_floor(base):
    """The base model frozen, gradients still flowing back through every layer, no adapter.

    Any LoRA on every layer pays at least this much per step (forward, input gradients
    of all frozen layers, head update); the rest of its step is the adapter's own work.
    """
    from tweetcls.core.surgery import head_module_names

    model = copy.deepcopy(base).requires_grad_(False)
    for name in head_module_names(model):
        model.get_submodule(name).requires_grad_(True)
    embeddings = model.base_model.embeddings
    # gradients start at the embedding output, as they do under LoRA on layer 0
    embeddings.register_forward_hook(lambda module, args, out: out.requires_grad_(True))
    return model


def forward_timer(model, batch):
    model.eval()

    def forward() -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            model(**batch)
            return time.perf_counter() - start

    return forward


def interleaved(timers: dict, steps: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call, the contenders taking turns so drift hits all alike."""
    for _ in range(warmup):
        for fn in timers.values():
            fn()
    times = {name: [] for name in timers}
    for _ in range(steps):
        for name, fn in timers.items():
            times[name].append(fn())
    return {name: statistics.median(t) for name, t in times.items()}


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, Linux only."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def step_memory(kind: str, args) -> float:
    """Peak resident-memory growth (MB) over 3 training steps of one contender, in this process."""
    import peft

    from tweetcls.lora import inject_lora, mark_only_lora_as_trainable
    from tweetcls.core.dropout import use_fast_dropout

    model = classifier(args.model)
    if kind == "peft":
        model = peft.get_peft_model(model, peft.LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"], task_type="SEQ_CLS",
            modules_to_save=["classifier", "pooler"]))
    elif kind != "full":
        inject_lora(model, ["query", "value"], r=8, alpha=16, dropout=0.1)
        mark_only_lora_as_trainable(model)
        use_fast_dropout(model)
    batch = random_batch(model.config.vocab_size, args.batch, args.seq)
    labels = torch.randint(0, 4, (args.batch,), generator=torch.Generator().manual_seed(1))
    step = step_timer(model, batch, labels)
    before = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    for _ in range(3):
        step()
    return rss_mb("VmHWM") - before


def memory_table(args) -> dict[str, float]:
    """Each contender in a fresh process, so one's freed memory cannot hide another's peak."""
    out = {}
    for kind in ("ours", "peft", "full"):
        done = subprocess.run([sys.executable, __file__, "--memory-of", kind, "--model", args.model,
                               "--batch", str(args.batch), "--seq", str(args.seq), "--threads", str(args.threads)],
                              capture_output=True, text=True, check=True)
        out[kind] = float(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--memory-of", choices=("ours", "peft", "full"), help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:
        print(step_memory(args.memory_of, args))
        return

    import peft

    from tweetcls.lora import inject_lora, lora_layers, mark_only_lora_as_trainable, merge_lora
    from tweetcls.core.dropout import use_fast_dropout

    base = classifier(args.model)
    batch = random_batch(base.config.vocab_size, args.batch, args.seq)
    labels = torch.randint(0, 4, (args.batch,), generator=torch.Generator().manual_seed(1))

    ours = copy.deepcopy(base)
    inject_lora(ours, ["query", "value"], r=8, alpha=16, dropout=0.1)
    mark_only_lora_as_trainable(ours)
    with torch.no_grad():
        for layer in lora_layers(ours).values():
            layer.lora_B.normal_(std=0.02)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"], task_type="SEQ_CLS",
        modules_to_save=["classifier", "pooler"]))
    with torch.no_grad():
        for name, module in theirs.named_modules():
            if isinstance(module, peft.tuners.lora.LoraLayer):
                own = ours.get_submodule(name.removeprefix("base_model.model."))
                module.lora_A["default"].weight.copy_(own.lora_A)
                module.lora_B["default"].weight.copy_(own.lora_B)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        max_diff = (ours(**batch).logits - theirs(**batch).logits).abs().max().item()

    full = copy.deepcopy(base)
    as_trained = copy.deepcopy(ours)
    use_fast_dropout(as_trained)  # what train.py does (--fast-dropout, the default) to the whole model
    steps = interleaved({"ours": step_timer(ours, batch, labels), "peft": step_timer(theirs, batch, labels),
                         "ours + fast dropout in the model": step_timer(as_trained, batch, labels),
                         "frozen floor": step_timer(frozen_floor(base), batch, labels),
                         "full": step_timer(full, batch, labels)}, args.steps)
    merged = merge_lora(copy.deepcopy(ours))
    forwards = interleaved({"merged": forward_timer(merged, batch), "base": forward_timer(base, batch)}, args.steps)

    memory = memory_table(args)
    result = {
        "peft": peft.__version__, "max_abs_logit_diff_vs_peft": max_diff,
        "step_peak_memory_growth_mb": memory,
        "train_step_median_s": steps, "ours_over_peft": steps["ours"] / steps["peft"],
        "lora_over_full": steps["ours"] / steps["full"],
        "as_trained_over_peft": steps["ours + fast dropout in the model"] / steps["peft"],
        "floor_over_peft": steps["frozen floor"] / steps["peft"],
        "ours_adapter_share": (steps["ours"] - steps["frozen floor"]) / steps["ours"],
        "peft_adapter_share": (steps["peft"] - steps["frozen floor"]) / steps["peft"],
        "forward_median_s": forwards, "merged_over_base": forwards["merged"] / forwards["base"],
    }
    print(f"{args.model}, batch {args.batch}x{args.seq}, {args.threads} threads, median of {args.steps}")
    print("| measurement | value |\n|---|---|")
    print(f"| max abs logit diff, ours vs peft | {max_diff:.2e} |")
    for name, seconds in steps.items():
        print(f"| train step, {name} | {seconds:.3f} s |")
    print(f"| ours / peft | {result['ours_over_peft']:.3f} |")
    print(f"| ours + fast dropout in the model (as train.py trains) / peft | {result['as_trained_over_peft']:.3f} |")
    print(f"| LoRA / full | {result['lora_over_full']:.3f} |")
    print(f"| frozen floor / peft (least any adapter pays with torch dropout) | {result['floor_over_peft']:.3f} |")
    print(f"| adapter's share of the step, ours / peft | {result['ours_adapter_share']:.3f} / "
          f"{result['peft_adapter_share']:.3f} |")
    print(f"| merged-LoRA forward / base forward | {result['merged_over_base']:.3f} |")
    for name, mb in memory.items():
        print(f"| peak memory growth over 3 training steps, {name} | {mb:.0f} MB |")
    write_result("lora_speed", args, result)


if __name__ == "__main__":
    main()

"""train.py end to end on a GPU, fp32 against bf16-mixed, with random weights.

The lent GPU machines cannot reach the Hub or PyPI and take at most 64 MiB of files, so
pretrained weights cannot travel: this check ships configs and tokenizers only, builds
random-weight models of the same shapes there, and runs the real commands on TweetEval
emotion: the default LoRA, full fine-tuning, the MPNet-12-shaped teacher and a KD student
from it. It proves the GPU path works (teacher logits computed on the GPU, every command
finishing with its results.json) and measures fit time per precision; the metrics of
random weights mean nothing and are not reported.

    python -m benchmarks.gpu_check --prepare DIR           # here: configs, tokenizers, data
    python -m benchmarks.gpu_check --shapes DIR [--epochs 2] [--out FILE.json]   # there
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".h5", ".msgpack", ".ckpt")
SHAPES = {"minilm-l6": "minilm-l6", "mpnet-12": "mpnet-base"}  # folder name -> resolve_model name
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def prepare(folder: Path, data_dir: Path) -> None:
    """Everything a model folder holds except its weights, and the emotion data."""
    from tweetcls.core.resolve import resolve_model

    for name, short in SHAPES.items():
        source = Path(resolve_model(short))
        shutil.copytree(source, folder / name, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if n.endswith(WEIGHT_SUFFIXES) or n.startswith(".")])
    shutil.copytree(data_dir / "tweet_eval" / "emotion", folder / "data" / "tweet_eval" / "emotion", dirs_exist_ok=True)


def random_model(shape_dir: Path, target: Path) -> Path:
    """The encoder of ``shape_dir``'s config with random weights, beside its tokenizer files."""
    import torch
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(0)
    shutil.copytree(shape_dir, target, dirs_exist_ok=True)
    AutoModel.from_config(AutoConfig.from_pretrained(shape_dir)).save_pretrained(target)
    return target


def run(name: str, flags: list[str], out: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "train.py", *flags, "--output-dir", str(out), "--run-name", name,
                           "--no-progress-bar", "--overwrite"], capture_output=True, text=True)
    row = {"run": name, "rc": proc.returncode, "wall_s": round(time.perf_counter() - start, 1)}
    results = out / name / "results.json"
    if proc.returncode or not results.is_file():
        row["error"] = (proc.stderr or proc.stdout)[-3000:]
        return row
    data = json.loads(results.read_text())
    row |= {key: data.get(key) for key in ("precision", "fit_seconds", "wall_seconds", "steps", "train_samples_per_sec")}
    row["environment"] = data.get("environment")
    row["teacher_logits_cache"] = (data.get("distill") or {}).get("teacher_logits_cache")
    return row


def check(shapes: Path, epochs: int, work: Path) -> list[dict]:
    import torch

    from tweetcls.core.precision import resolve_precision

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}, "
          f"auto -> {resolve_precision('auto')}", flush=True)
    minilm = random_model(shapes / "minilm-l6", work / "models" / "minilm-l6")
    mpnet = random_model(shapes / "mpnet-12", work / "models" / "mpnet-12")
    common = ["--dataset", "tweet_eval/emotion", "--data-dir", str(shapes / "data"), "--max-epochs", str(epochs),
              "--seed", "0"]
    rows = []
    for tag, value in PRECISIONS.items():
        for name, flags in ((f"lora-{tag}", ["--method", "lora", "--model", str(minilm)]),
                            (f"full-{tag}", ["--method", "full", "--model", str(minilm)]),
                            (f"teacher-{tag}", ["--method", "teacher", "--model", str(mpnet)])):
            rows.append(run(name, [*flags, *common, "--precision", value], work / "runs"))
            print(json.dumps(rows[-1]), flush=True)
    teacher = work / "runs" / "teacher-fp32" / "model"
    for tag, value in PRECISIONS.items():
        rows.append(run(f"student-{tag}", ["--method", "distill", "--teacher", str(teacher), "--student", str(minilm),
                                           *common, "--kd-alpha", "0.9", "--precision", value], work / "runs"))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prepare", type=Path, help="write configs, tokenizers and the emotion data here")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    p.add_argument("--shapes", type=Path, help="a folder made by --prepare")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_check.json"))
    args = p.parse_args()
    if args.prepare:
        prepare(args.prepare, args.data_dir)
        return
    if not args.shapes:
        p.error("give --prepare DIR (here) or --shapes DIR (on the GPU machine)")
    from benchmarks.common import write_result

    rows = check(args.shapes, args.epochs, args.work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = write_result(args.out.stem, args, {"runs": rows}, folder=args.out.parent)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

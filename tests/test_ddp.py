"""Scale-out goes through Lightning: 2-process DDP on CPU trains one run, same weights on both ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("ddp_train.py")


def test_two_process_ddp_on_cpu(tiny_model_dir, tiny_csv, tmp_path):
    out, weights = tmp_path / "runs", tmp_path / "weights"
    flags = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(out),
             "--method", "lora", "--max-epochs", "1", "--batch-size", "8", "--no-progress-bar",
             "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TWEETCLS_RUN_DIR"))}
    done = subprocess.run([sys.executable, str(SCRIPT), str(weights), "--", *flags], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list(out.iterdir())
    assert len(runs) == 1, runs  # one run directory, not one per rank
    results = list(out.rglob("results.json"))
    assert len(results) == 1
    summary = json.loads(results[0].read_text())
    assert summary["config"]["devices"] == "2" and summary["steps"] > 0
    rank0, rank1 = load_file(str(weights / "rank0.safetensors")), load_file(str(weights / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # and training moved the adapters away from their zero init
    assert any(k.endswith("lora_B") and rank0[k].abs().sum() > 0 for k in rank0)

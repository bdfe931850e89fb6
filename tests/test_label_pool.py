"""Teacher labelling of a pool through Trainer.predict: 2 CPU processes (gloo DDP) fill the chunk
cache with the same logits as one process, and every rank gets the whole pool's logits back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import make_texts, save_tiny_classifier
from tweetcls.distill import teacher_cache

SCRIPT = Path(__file__).with_name("ddp_label_pool.py")


def label(teacher: Path, texts_file: Path, devices: int, cache: Path, out: Path) -> dict[str, torch.Tensor]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TWEETCLS_RUN_DIR"))}
    env["TWEETCLS_CACHE"] = str(cache)
    done = subprocess.run([sys.executable, str(SCRIPT), str(teacher), str(out), str(devices), str(texts_file)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    *_, world_size, folder = done.stdout.strip().splitlines()
    assert int(world_size) == devices
    folder = Path(folder)
    return {p.name: load_file(str(p))["logits"] for p in folder.glob("*.safetensors")}


def test_two_processes_write_the_same_chunk_cache_as_one(tiny_model_dir, tmp_path):
    teacher = save_tiny_classifier(tiny_model_dir, tmp_path / "teacher")
    texts = [t for t, _ in make_texts(17, seed=5)]  # chunks of 7, 7, 3; batches of 2 shared out over the ranks
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(texts) + "\n")
    one = label(teacher, texts_file, 1, tmp_path / "cache1", tmp_path / "one.safetensors")
    two = label(teacher, texts_file, 2, tmp_path / "cache2", tmp_path / "two.safetensors")
    assert sorted(one) == sorted(two) and len(one) == 3
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-6)
    whole_one = load_file(str(tmp_path / "one.safetensors"))["logits"]
    whole_two = load_file(str(tmp_path / "two.safetensors"))["logits"]
    torch.testing.assert_close(whole_two, whole_one, rtol=0, atol=1e-6)
    # and the logits are each text's own, whatever the batching: as the plain loop computes them
    alone, _ = teacher_cache.compute_teacher_logits(teacher, texts, 32)
    torch.testing.assert_close(whole_one, alone, rtol=0, atol=1e-5)


def test_every_rank_gets_whole_batches_and_every_text_once_at_least():
    texts = [("x" * n) for n in (5, 1, 9, 3, 7)]
    ranks = [teacher_cache.rank_batches(texts, 2, r, 2) for r in (0, 1)]
    assert ranks[0] and ranks[1] and len(ranks[0]) + len(ranks[1]) == 4  # 3 batches, one repeated: shared, not copied
    assert sorted({i for rank in ranks for b in rank for i in b}) == list(range(5))
    one = teacher_cache.rank_batches(texts, 2, 0, 1)
    assert one == [[1, 3], [0, 4], [2]] and all(b in one for rank in ranks for b in rank)
    assert teacher_cache.rank_batches(texts[:1], 64, 1, 3) == [[0]]  # fewer batches than ranks: none goes empty

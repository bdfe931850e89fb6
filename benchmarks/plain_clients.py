"""Load saved forms with their standard clients only, as a user without tweetcls would.

    python benchmarks/plain_clients.py JOBS.json OUT.json

Each job names a client and a folder; the answer is the logits of ``texts`` (or the error
the client raised). ``run_in_fresh_process`` (used by tests/test_portable_exports.py and
benchmarks/portable_exports.py) runs this file as a script in a new interpreter, so that
nothing of this project is imported or registered there: the script checks that at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


def transformers_logits(folder: str, texts: list[str], trust_remote_code: bool, batch_size: int) -> list:
    """``pipeline("text-classification")`` with raw scores (function_to_apply="none"), in label-id order."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=folder, trust_remote_code=trust_remote_code, device="cpu")
    order = classify.model.config.id2label
    rows = classify(texts, top_k=None, function_to_apply="none", batch_size=batch_size, truncation=True)
    return [[next(s["score"] for s in row if s["label"] == order[i]) for i in range(len(order))] for row in rows]


def peft_logits(folder: str, base: str, labels: list[str], texts: list[str], batch_size: int) -> list:
    """peft's own route: the plain base classifier, then ``PeftModel.from_pretrained``."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    model = PeftModel.from_pretrained(model, folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            out += model(**batch).logits.tolist()
    return out


def onnx_logits(model_file: str, tokenizer_file: str, max_length: int, texts: list[str], batch_size: int) -> list:
    """onnxruntime + tokenizers: the ONNX card's recipe."""
    import onnxruntime
    import tokenizers

    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    tokenizer = tokenizers.Tokenizer.from_file(tokenizer_file)
    tokenizer.enable_truncation(max_length)
    pad = next((t for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), None)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad) if pad else 0, pad_token=pad or "[PAD]")
    names = [i.name for i in session.get_inputs()]
    out = []
    for i in range(0, len(texts), batch_size):
        encoded = tokenizer.encode_batch(texts[i:i + batch_size])
        feed = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}
        out += session.run(None, {n: feed[n] for n in names})[0].tolist()
    return out


def run_job(job: dict) -> dict:
    texts, batch = job["texts"], job.get("batch_size", 8)
    try:
        if job["client"] == "transformers":
            logits = transformers_logits(job["folder"], texts, job.get("trust_remote_code", False), batch)
        elif job["client"] == "peft":
            logits = peft_logits(job["folder"], job["base"], job["labels"], texts, batch)
        elif job["client"] == "onnxruntime":
            logits = onnx_logits(job["model_file"], job["tokenizer_file"], job.get("max_length", 128), texts, batch)
        else:
            raise SystemExit(f"unknown client {job['client']}")
    except Exception as err:  # the answer is the refusal: its type and first line
        return {"error": type(err).__name__, "message": " ".join(str(err).split())}
    return {"logits": logits}


def run_in_fresh_process(jobs: list[dict], workdir: Path) -> list[dict]:
    """The answers to ``jobs`` from a new interpreter running this file; it must import no project module."""
    (workdir / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(workdir / "hf_modules")}
    done = subprocess.run([sys.executable, __file__, str(workdir / "jobs.json"), str(workdir / "answers.json")],
                          cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the plain client failed:\n{done.stderr[-3000:]}")
    result = json.loads((workdir / "answers.json").read_text())
    if result["project_modules"]:
        raise RuntimeError(f"the plain client imported {result['project_modules']}")
    return result["answers"]


def main() -> int:
    jobs = json.loads(open(sys.argv[1]).read())
    answers = [run_job(job) for job in jobs]
    ours = sorted(name for name in sys.modules if name.split(".")[0] in
                  ("tweetcls", "lora", "distill", "compress", "datamodules", "mlm", "core", "training", "commands"))
    with open(sys.argv[2], "w") as f:
        json.dump({"answers": answers, "project_modules": ours}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Each saved form of a run, loaded by its standard client alone, scored on the run's test split.

    python -m benchmarks.portable_exports runs/<run> [runs/<another run> ...]

Per run: the in-project figure (results.json, and the predictor on the same texts), then in a
fresh process that imports nothing of tweetcls (benchmarks/plain_clients.py): transformers
``pipeline`` on ``model/`` (with ``trust_remote_code=True`` where the folder needs it, and
without it: the refusal), the peft export on the plain base through ``PeftModel`` (or the
export's refusal), ONNX fp32 and int8 through onnxruntime + tokenizers, and the torch int8
variant in plain transformers (refused). For a mean-pooled run it also scores the folder as it
was written before issue 33 (a plain BERT config): what a pipeline silently gave then.
Writes benchmarks/results/portable_exports.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torchmetrics.functional.classification import multiclass_f1_score

from benchmarks.common import write_result
from benchmarks.plain_clients import run_in_fresh_process

REPO = Path(__file__).resolve().parents[1]


def macro_f1(logits: list | torch.Tensor, labels: list[int]) -> float:
    logits = torch.as_tensor(logits)
    return float(multiclass_f1_score(logits.argmax(-1), torch.tensor(labels), logits.shape[-1], average="macro"))


def as_before_issue_33(model_dir: Path, out: Path) -> Path:
    """A copy of ``model_dir`` with the plain config save_pretrained wrote before: model_type bert."""
    from tweetcls.core.modeling_tweetcls import MODEL_TYPE_PREFIX

    shutil.copytree(model_dir, out)
    config = json.loads((out / "config.json").read_text())
    base = config["model_type"].removeprefix(MODEL_TYPE_PREFIX)
    config |= {"model_type": base, "architectures": [config["architectures"][0].removeprefix("MeanPooled")]}
    config.pop("auto_map", None)
    (out / "config.json").write_text(json.dumps(config))
    (out / "modeling_tweetcls.py").unlink()
    return out


def command(argv: list[str]) -> None:
    """Run one of the project's commands as a user does (``python export.py ...``); its one error line
    is raised (a refused export is a row of the table)."""
    import subprocess

    done = subprocess.run([sys.executable, str(REPO / argv[0]), *argv[1:]], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")


def forms_of(run_dir: Path, workdir: Path, texts: list[str]) -> tuple[list[str], list[dict], dict]:
    """(row names, plain-client jobs, rows decided here: refusals at export)."""
    from tweetcls import load_run

    run = load_run(run_dir)
    mean = run.pooling == "mean"
    names, jobs, decided = [], [], {}
    model_dir = run_dir / "model"
    names.append("model/ — transformers pipeline" + (" (trust_remote_code=True)" if mean else ""))
    jobs.append({"client": "transformers", "folder": str(model_dir), "texts": texts, "trust_remote_code": mean,
                 "batch_size": 32})
    if mean:
        names.append("model/ — transformers pipeline, plain")
        jobs.append({"client": "transformers", "folder": str(model_dir), "texts": texts[:4]})
        names.append("model/ as written before issue 33 — transformers pipeline, plain")
        jobs.append({"client": "transformers", "folder": str(as_before_issue_33(model_dir, workdir / "before")),
                     "texts": texts, "batch_size": 32})
    peft_dir = workdir / "peft"
    if (run_dir / "adapter").is_dir():
        try:
            command(["export.py", str(run_dir), "--format", "peft", "--out", str(peft_dir)])
            names.append("peft export — PeftModel on the plain base")
            base = json.loads((peft_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
            base = str(run.results.get("model_path") or base)  # the same base, from where this machine keeps it
            jobs.append({"client": "peft", "folder": str(peft_dir), "base": base, "labels": run.label_names,
                         "texts": texts, "batch_size": 32})
        except Exception as err:  # the refusal is the row
            decided["peft export"] = {"refused": " ".join(str(err).split())}
    onnx_dir = workdir / "onnx"
    command(["export.py", str(run_dir), "--format", "onnx-int8", "--out", str(onnx_dir)])
    for file, label in (("model.onnx", "ONNX fp32"), ("model-int8.onnx", "ONNX int8 (dynamic)")):
        names.append(f"{label} — onnxruntime + tokenizers")
        jobs.append({"client": "onnxruntime", "model_file": str(onnx_dir / file),
                     "tokenizer_file": str(onnx_dir / "tokenizer.json"), "max_length": run.max_length,
                     "texts": texts, "batch_size": 32,
                     "compare_with": str(onnx_dir / file) if "int8" in file else None})
    command(["evaluate.py", str(run_dir), "--compress", "int8", "--latency-iters", "1", "--max-eval-samples", "32",
                   "--output", str(workdir / "ledger.json"), "--save-variants", str(workdir / "variants")])
    names.append("int8 variant (--save-variants) — transformers, trust_remote_code=True")
    jobs.append({"client": "transformers", "folder": str(workdir / "variants" / "int8"), "texts": texts[:4],
                 "trust_remote_code": True})
    return names, jobs, decided


def measure(run_dir: Path, data_dir: str | None) -> dict:
    from tweetcls import Predictor, load_run
    from tweetcls.loader import load_run_data

    run = load_run(run_dir)
    test = load_run_data(run.results, data_dir).splits["test"]
    texts, labels = list(test["text"]), list(test["label"])
    ours = torch.from_numpy(Predictor.from_run(run_dir).logits(texts))
    rows = [{"form": "in-project (results.json)", "macro_f1": run.results["test"]["macro_f1"]},
            {"form": "in-project predictor (tweetcls.Predictor, torch)", "macro_f1": macro_f1(ours, labels)}]
    with tempfile.TemporaryDirectory() as tmp:
        names, jobs, decided = forms_of(run_dir, Path(tmp), texts)
        for name, job, answer in zip(names, jobs, run_in_fresh_process(jobs, Path(tmp))):
            row = {"form": name}
            if "logits" in answer:
                logits = torch.tensor(answer["logits"])
                row["macro_f1"] = macro_f1(logits, labels[:len(logits)])
                if len(logits) == len(texts):
                    # int8: against this project's predictor on the same int8 file (fp32: the torch predictor)
                    reference = torch.from_numpy(Predictor.from_run(job["compare_with"], backend="onnx-int8")
                                                 .logits(texts)) if job.get("compare_with") else ours
                    if job.get("compare_with"):
                        row["in_project_macro_f1"] = macro_f1(reference, labels)
                    row["argmax_equal_to_predictor"] = bool(torch.equal(logits.argmax(-1), reference.argmax(-1)))
                    row["argmax_agreement"] = float((logits.argmax(-1) == reference.argmax(-1)).double().mean())
                    row["max_abs_logit_diff"] = float((logits - reference).abs().max())
            else:
                row["refused"] = f"{answer['error']}: {answer['message']}"
            rows.append(row)
        rows += [{"form": name, **row} for name, row in decided.items()]
    return {"run": str(run_dir), "pooling": run.pooling, "test_texts": len(texts), "rows": rows}


def short(message: str) -> str:
    """A refusal as the table shows it: its kind and the fix it names."""
    if "contains custom code" in message and "trust_remote_code=True" in message:
        return "ValueError: the folder \"contains custom code\" … \"pass the argument `trust_remote_code=True`\""
    if "Could not load model" in message:
        return "ValueError: \"Could not load model … with any of the following classes\" (no model.safetensors)"
    return message[:170] + ("…" if len(message) > 170 else "")


def markdown(result: dict) -> str:
    lines = [f"`{Path(result['run']).name}` (pooling: {result['pooling']}, {result['test_texts']} test texts)", "",
             "| form — client | test macro-F1 | argmax = in-project | max abs logit diff |", "|---|---|---|---|"]
    for row in result["rows"]:
        score = f"{row['macro_f1']:.4f}" if "macro_f1" in row and "refused" not in row else \
            f"refused: {short(row.get('refused', ''))}"
        same = "yes" if row.get("argmax_equal_to_predictor") else \
            f"**no** ({100 * row['argmax_agreement']:.1f}% agree)" if "argmax_agreement" in row else ""
        if "in_project_macro_f1" in row:
            score += f" (in-project on the same file: {row['in_project_macro_f1']:.4f})"
        diff = f"{row['max_abs_logit_diff']:.1e}" if "max_abs_logit_diff" in row else ""
        lines.append(f"| {row['form']} | {score} | {same} | {diff} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories of train.py")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [measure(Path(run), args.data_dir) for run in args.runs]
    print("\n\n".join(markdown(r) for r in results))
    write_result("portable_exports", args, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""export.py: ONNX (and its int8 variant) and peft's adapter format, each loaded by its own
runtime and giving this project's logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tweetcls.commands import export
from conftest import make_texts, train_tiny_run
from tweetcls import Predictor, load_run

TEXTS = [text for text, _ in make_texts(12, seed=5)]


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    return train_tiny_run(tiny_model_dir, tiny_csv, out, "--lora-targets", "query,value,dense", "--max-epochs", "2")


def our_logits(run_dir: Path) -> torch.Tensor:
    run = load_run(run_dir)
    with torch.no_grad():
        return run.model(**run.tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


def test_peft_loads_the_exported_adapter_and_gives_our_logits(lora_run, tiny_model_dir, tmp_path):
    peft = pytest.importorskip("peft")
    assert export.main([str(lora_run), "--format", "peft", "--out", str(tmp_path / "peft")]) == 0
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8 and config["lora_alpha"] == 16
    labels = json.loads((lora_run / "results.json").read_text())["label_names"]
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=len(labels))
    model = peft.PeftModel.from_pretrained(base, tmp_path / "peft").eval()
    tokenizer = load_run(lora_run).tokenizer
    with torch.no_grad():
        theirs = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(theirs, our_logits(lora_run), rtol=0, atol=1e-5)


def test_onnx_export_runs_in_onnx_runtime_with_our_logits(lora_run, tmp_path, capsys):
    import onnxruntime as ort

    assert export.main([str(lora_run), "--format", "onnx-int8", "--out", str(tmp_path / "onnx")]) == 0
    assert "written:" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = load_run(lora_run).tokenizer
    for texts in (TEXTS, TEXTS[:1], [t * 3 for t in TEXTS[:4]]):  # other batch sizes and lengths: dynamic axes
        batch = tokenizer(texts, padding=True, return_tensors="np")
        onnx_logits = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})[0]
        with torch.no_grad():
            ours = load_run(lora_run).model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
        torch.testing.assert_close(torch.from_numpy(onnx_logits), ours, rtol=0, atol=1e-4)
    meta = {p.key: json.loads(p.value) for p in __import__("onnx").load(str(tmp_path / "onnx" / "model.onnx")).metadata_props}
    assert meta["label_names"] == load_run(lora_run).label_names and meta["pooling"] == load_run(lora_run).pooling
    int8 = Predictor.from_run(tmp_path / "onnx", backend="onnx-int8")
    assert int8.backend == "onnx-int8" and (tmp_path / "onnx" / "model-int8.onnx").is_file()


def test_export_refuses_what_it_cannot_export(lora_run, tmp_path, capsys):
    assert export.main([str(lora_run / "model"), "--format", "peft"]) == 2
    assert "holds no LoRA adapter" in capsys.readouterr().err
    assert export.main([str(tmp_path), "--format", "onnx"]) == 2
    assert "holds no run" in capsys.readouterr().err


def test_onnx_runtime_variants_are_rows_of_the_compression_ledger(lora_run, tmp_path, capsys):
    from tweetcls.commands import evaluate

    out = tmp_path / "ledger"
    assert evaluate.main([str(lora_run), "--compress", "none,onnx,onnx-int8,prune-structured:0.5+onnx",
                          "--latency-iters", "3", "--output", str(out) + ".json",
                          "--save-variants", str(tmp_path / "variants")]) == 0
    rows = {r["variant"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert set(rows) == {"none", "onnx", "onnx-int8", "prune-structured:0.5+onnx"}
    # the fp32 export computes what torch computes: same metric, same weights counted
    assert rows["onnx"]["task_metric"] == pytest.approx(rows["none"]["task_metric"], abs=1e-6)
    assert rows["onnx"]["params_total"] == rows["none"]["params_total"]
    assert rows["prune-structured:0.5+onnx"]["params_total"] < rows["none"]["params_total"]
    assert rows["onnx-int8"]["size_mb"] < rows["onnx"]["size_mb"]  # int8 MatMul weights (the tiny model is mostly embeddings)
    assert all(rows[v]["latency_p50_ms"] > 0 for v in rows)
    assert (tmp_path / "variants" / "onnx-int8" / "model-int8.onnx").is_file()


def test_onnx_steps_must_come_last(capsys, tmp_path):
    from tweetcls.commands import evaluate

    assert evaluate.main([str(tmp_path), "--compress", "onnx+prune:0.5"]) == 2
    assert "must be the last step" in capsys.readouterr().err


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fmt", ["onnx", "onnx-int8", "hf", "peft"])
@pytest.mark.parametrize("where", ["users-folder", "the-run-itself", "the-folder-of-all-runs"])
def test_export_never_replaces_a_folder_it_did_not_write(lora_run, tmp_path, capsys, fmt, where):
    """--out onto a user's folder, onto the run, or onto the folder of all runs: refused in one
    line, every file left as it was (the export used to replace the folder wholesale)."""
    if where == "users-folder":
        out = tmp_path / "thesis"
        (out / "sub").mkdir(parents=True)
        (out / "thesis.txt").write_text("chapter one")
        (out / "sub" / "data.csv").write_text("text,label\n")
    else:
        out = lora_run if where == "the-run-itself" else lora_run.parent
    before = _tree(out)
    assert export.main([str(lora_run), "--format", fmt, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing was changed" in err[0], err
    assert _tree(out) == before


def test_export_replaces_its_own_earlier_export_but_not_a_file_added_to_it(lora_run, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert export.main([str(lora_run), "--format", "onnx-int8", "--out", str(out)]) == 0
    assert export.main([str(lora_run), "--format", "onnx", "--out", str(out)]) == 0  # its own folder: replaced
    assert not (out / "model-int8.onnx").exists() and (out / "model.onnx").is_file()
    assert export.main([str(lora_run), "--format", "onnx-int8", "--out", str(out)]) == 0
    assert (out / "model-int8.onnx").is_file()  # what it added later is its own too
    assert export.main([str(lora_run), "--format", "onnx", "--out", str(out)]) == 0
    (out / "my_notes.md").write_text("mine")
    capsys.readouterr()
    assert export.main([str(lora_run), "--format", "onnx", "--out", str(out)]) == 2
    assert "my_notes.md" in capsys.readouterr().err and (out / "my_notes.md").read_text() == "mine"

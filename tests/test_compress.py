"""Pruning, quantization, LoRA on an int8 base, and the ledger; each test able to fail."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tweetcls.commands import evaluate
from tweetcls.commands import train
from tweetcls.compress import (
    Int8Linear,
    load_int8,
    magnitude_prune,
    make_permanent,
    prune_ffn_neurons,
    quantize_frozen_linears,
    quantize_int8,
    save_int8,
    sparsity_report,
)
from tweetcls.compress.ledger import parse_variants
from tweetcls.compress.unstructured import prunable_linears
from tweetcls.core.errors import UsageError
from tweetcls.lora import inject_lora, lora_layers, mark_only_lora_as_trainable, merge_lora


def classifier(model_dir, labels: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=labels).eval()


def inputs(model_dir, texts=("we love the sunshine today", "awful broken chair", "the river was quiet and calm")):
    return AutoTokenizer.from_pretrained(model_dir)(list(texts), padding=True, return_tensors="pt")


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_layerwise_pruning_reaches_the_amount_in_every_layer(tiny_model_dir, amount):
    model = classifier(tiny_model_dir)
    magnitude_prune(model, amount)
    make_permanent(model)
    report = sparsity_report(model)
    assert all(abs(s - amount) <= 0.01 for s in report["per_layer"].values()), report
    assert abs(report["overall"] - amount) <= 0.01
    assert model.classifier.weight.count_nonzero() == model.classifier.weight.numel()  # head untouched


def test_global_pruning_reaches_the_amount_overall_and_remove_leaves_plain_tensors(tiny_model_dir):
    model = classifier(tiny_model_dir)
    magnitude_prune(model, 0.4, scope="global")
    assert all(prune.is_pruned(m) for m in prunable_linears(model).values())
    make_permanent(model)
    report = sparsity_report(model)
    assert abs(report["overall"] - 0.4) <= 0.01
    assert len(set(round(s, 2) for s in report["per_layer"].values())) > 1  # one threshold, uneven layers
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    assert not [n for n in names if n.endswith(("weight_orig", "weight_mask"))]
    assert all(not m._forward_pre_hooks for m in model.modules())
    assert all(isinstance(m.weight, nn.Parameter) for m in prunable_linears(model).values())


@pytest.mark.parametrize("amount", [1.0, -0.1, 1.5])
def test_pruning_amount_outside_0_1_is_a_clear_error(tiny_model_dir, amount):
    with pytest.raises(UsageError, match=r"pruning amount must be in \[0, 1\)"):
        magnitude_prune(classifier(tiny_model_dir), amount)
    with pytest.raises(UsageError, match=r"pruning amount must be in \[0, 1\)"):
        prune_ffn_neurons(classifier(tiny_model_dir), amount)


def test_structured_pruning_keeps_untouched_neurons_and_shrinks_by_the_expected_count(tiny_model_dir, tmp_path):
    model = classifier(tiny_model_dir)
    original = copy.deepcopy(model)
    config = model.config
    width, hidden, layers = config.intermediate_size, config.hidden_size, config.num_hidden_layers
    kept = prune_ffn_neurons(model, 0.25)
    keep_n = round(width * 0.75)
    assert model.config.intermediate_size == keep_n
    removed = width - keep_n
    expected = layers * (removed * hidden + removed + removed * hidden)  # rows+bias of W1, columns of W2
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(original) - count(model) == expected
    x = torch.randn(2, 5, hidden)
    for i, (old, new) in enumerate(zip(original.bert.encoder.layer, model.bert.encoder.layer)):
        with torch.no_grad():
            torch.testing.assert_close(new.intermediate(x), old.intermediate(x)[..., kept[i]], rtol=0, atol=0)
        # the kept neurons are the most important ones, by weight norm
        importance = old.intermediate.dense.weight.norm(dim=1)
        assert importance[kept[i]].mean() > importance.mean()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    batch = inputs(tiny_model_dir)
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, model(**batch).logits)


def test_structured_pruning_refuses_an_unknown_model_type():
    class Other(nn.Module):
        config = type("Config", (), {"model_type": "t5"})()

    with pytest.raises(UsageError, match="structured pruning does not know model type 't5'; it knows bert"):
        prune_ffn_neurons(Other(), 0.5)


def test_int8_on_real_minilm_is_close_smaller_and_reloads_identically(minilm_dir, tmp_path):
    model = classifier(minilm_dir, labels=4)
    batch = inputs(minilm_dir)
    quantized = quantize_int8(model)
    assert any(isinstance(m, nn.Linear) for m in model.modules())  # the original is untouched
    with torch.no_grad():
        fp32, int8 = model(**batch).logits, quantized(**batch).logits
    assert 0 < (fp32 - int8).abs().max() < 0.05
    model.save_pretrained(tmp_path / "fp32")
    save_int8(quantized, tmp_path / "int8")
    size = lambda d: sum(f.stat().st_size for f in d.glob("*.safetensors"))
    assert size(tmp_path / "fp32") >= 2 * size(tmp_path / "int8")
    assert not list((tmp_path / "int8").glob("*.bin")) and not list((tmp_path / "int8").glob("*.pt"))
    with torch.no_grad():
        assert torch.equal(load_int8(tmp_path / "int8")(**batch).logits, int8)


@pytest.mark.parametrize("spec, message", [
    ("none,shrink:0.5", "unknown compression step 'shrink'"),
    ("prune:1.2", r"pruning amount must be in \[0, 1\)"),
    ("prune", "prune needs an amount"),
    ("int8+prune:0.3", "onnx-int8-static must be the last step of a variant"),
    ("int8:4", "int8 takes no amount"),
])
def test_bad_compression_specs(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_variants(spec)


def test_lora_on_an_int8_base_trains_only_the_adapters(tiny_model_dir, tiny_csv):
    from tweetcls.datamodules import TextClassificationDataModule

    model = classifier(tiny_model_dir).train()
    inject_lora(model, ["query", "value"], r=4, alpha=8)
    mark_only_lora_as_trainable(model)
    quantized = quantize_frozen_linears(model)
    assert all(isinstance(layer.base, Int8Linear) for layer in lora_layers(model).values())
    assert any(name.endswith("intermediate.dense") for name in quantized)
    assert isinstance(model.classifier, nn.Linear)  # the trained head stays fp32
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    dm = TextClassificationDataModule(str(tiny_csv), tok, batch_size=16)
    dm.setup()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(4):
        for batch in dm.train_dataloader():
            optim.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            optim.step()
            losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(".lora_" in k or k.startswith(("classifier", "bert.pooler")) for k in changed), changed
    assert all(not k.endswith(("weight_int8", "weight_scale")) for k in changed)


def test_quantized_base_with_lora_matches_merge_then_quantize(minilm_dir):
    """Two routes to an int8 model with adapters; both stay close to the fp32 merged model."""
    model = classifier(minilm_dir, labels=4)
    inject_lora(model, ["query", "value"], r=8, alpha=16)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.5)
    mark_only_lora_as_trainable(model)
    batch = inputs(minilm_dir)
    reference = merge_lora(copy.deepcopy(model))
    merge_then_quantize = quantize_int8(reference)
    int8_base = copy.deepcopy(model)
    quantize_frozen_linears(int8_base)
    with torch.no_grad():
        ref = reference(**batch).logits
        route_a = merge_then_quantize(**batch).logits
        route_b = int8_base(**batch).logits
        lora_effect = (ref - classifier(minilm_dir, labels=4)(**batch).logits).abs().max()
    assert (route_a - ref).abs().max() < 0.05
    assert (route_b - ref).abs().max() < 0.05
    assert (route_a - route_b).abs().max() < 0.05
    assert lora_effect > 0.05  # the adapters matter more than the quantization error


def test_qlora_method_end_to_end_saves_a_plain_model(tiny_model_dir, tiny_csv, tmp_path):
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
            "--run-name", "q", "--method", "qlora", "--max-epochs", "1", "--batch-size", "16", "--no-progress-bar"]
    assert train.main(argv) == 0
    results = json.loads((tmp_path / "q" / "results.json").read_text())
    assert results["method"] == "qlora" and results["lora"]["int8_base_layers"] > 0
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "q" / "model")
    assert all(type(m) is not Int8Linear for m in model.modules())
    # the saved fp32 model (int8 base dequantized, adapters merged) computes what the adapter on
    # an int8 copy of the base computes, as training had it
    from tweetcls import load_run

    plain, adapter = load_run(tmp_path / "q" / "model"), load_run(tmp_path / "q" / "adapter")
    batch = plain.tokenizer(["sunny day at the beach", "storm warning tonight"], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = adapter.model(**batch).logits
        assert torch.allclose(plain.model(**batch).logits, expected, atol=1e-5)


def test_ledger_end_to_end(tiny_model_dir, tiny_csv, tmp_path, capsys):
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
            "--run-name", "r", "--method", "full", "--max-epochs", "1", "--batch-size", "16", "--no-progress-bar"]
    assert train.main(argv) == 0
    run_dir = tmp_path / "r"
    spec = "prune:0.5,prune-structured:0.5,int8,prune-structured:0.5+int8"
    assert evaluate.main([str(run_dir), "--compress", spec, "--latency-iters", "3",
                          "--save-variants", str(tmp_path / "variants")]) == 0
    out = capsys.readouterr().out
    assert "| variant |" in out and "prune-structured:0.5+int8" in out
    ledger = json.loads((run_dir / "compression-tiny-test.json").read_text())
    rows = {r["variant"]: r for r in ledger["rows"]}
    assert list(rows) == ["none", "prune:0.5", "prune-structured:0.5", "int8", "prune-structured:0.5+int8"]
    assert rows["none"]["delta"] == 0
    assert rows["prune:0.5"]["params_total"] == rows["none"]["params_total"]
    assert rows["prune:0.5"]["params_nonzero"] < 0.8 * rows["none"]["params_nonzero"]
    assert rows["prune-structured:0.5"]["params_total"] < rows["none"]["params_total"]
    assert rows["int8"]["size_mb"] < rows["none"]["size_mb"]  # 2x and more on real models: see the MiniLM test
    assert all(r["latency_p90_ms"] >= r["latency_p50_ms"] > 0 for r in rows.values())
    with open(run_dir / "compression-tiny-test.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["variant"] for r in table] == list(rows) and {"macro_f1", "accuracy", "task_metric"} <= set(table[0])
    assert float(table[0]["macro_f1"]) == rows["none"]["macro_f1"]
    # the line a user copies from: the files written and the TensorBoard folder, each where it says
    written = next(line for line in out.splitlines() if line.startswith("written to "))
    files, logdir = written.removeprefix("written to ").split("; TensorBoard: tensorboard --logdir ")
    assert sorted(Path(f).name for f in files.split(", ")) == ["compression-tiny-test.csv", "compression-tiny-test.json"]
    assert all(Path(f).is_file() for f in files.split(", "))
    # one HPARAMS run per variant, named after it (':' is not a folder-name character everywhere)
    runs = {p.name for p in Path(logdir).iterdir() if p.is_dir()}
    assert runs == {v.replace(":", "_") for v in rows}
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "variants" / "prune-structured_0.5")
    assert reloaded.config.intermediate_size < AutoModelForSequenceClassification.from_pretrained(run_dir / "model").config.intermediate_size
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (run_dir / "compression").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["images"]) | set(acc.Tags()["scalars"]) | set(acc.Tags()["tensors"])
    assert "compression/metric_vs_size_and_latency" in tags
    assert "ledger/task_metric" in tags and "compression/ledger/text_summary" in tags


def test_a_one_variant_ledger_writes_its_csv_and_json(tmp_path):
    from tweetcls.compress.ledger_report import write_files

    row = {"variant": "none", "params_total": 10, "task_metric": 0.5, "delta": 0.0}
    csv_path, json_path = write_files([row], tmp_path / "compression-x", {"dataset": "x"})
    with open(csv_path, newline="") as f:
        assert list(csv.DictReader(f)) == [{k: str(v) for k, v in row.items()}]
    assert json.loads(json_path.read_text()) == {"dataset": "x", "rows": [row]}


def test_ledger_unknown_step_fails_before_loading(tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "nothing"), "--compress", "none,zip"]) == 2
    assert "unknown compression step 'zip'" in capsys.readouterr().err


def test_neuron_importance_of_layers_without_bias_is_the_product_of_weight_norms():
    from tweetcls.compress.structured import neuron_importance

    torch.manual_seed(0)
    first, second = torch.nn.Linear(4, 6, bias=False), torch.nn.Linear(6, 4, bias=False)
    expected = first.weight.norm(dim=1) * second.weight.norm(dim=0)
    assert torch.allclose(neuron_importance(first, second), expected)


def test_without_torch_ao_int8_falls_back_to_torchao_and_else_says_what_to_install(monkeypatch):
    """A later torch may drop torch.ao.quantization: quantize_int8 then asks torchao for its
    dynamic int8 config (faked here: torchao is not a test dependency), and without torchao
    fails with one line naming the package."""
    import sys
    import types

    from tweetcls.compress import dynamic_int8

    def no_torch_ao(model):
        raise ImportError("No module named 'torch.ao.quantization'")

    monkeypatch.setattr(dynamic_int8, "_quantize_dynamic", no_torch_ao)
    calls = []
    fake = types.ModuleType("torchao.quantization")
    fake.Int8DynamicActivationInt8WeightConfig = type("Int8DynamicActivationInt8WeightConfig", (), {})
    fake.quantize_ = lambda model, config: calls.append((model, config))
    monkeypatch.setitem(sys.modules, "torchao", types.ModuleType("torchao"))
    monkeypatch.setitem(sys.modules, "torchao.quantization", fake)
    model = nn.Sequential(nn.Linear(4, 4))
    quantized = quantize_int8(model, inplace=True)
    assert quantized is model and len(calls) == 1
    assert calls[0][0] is model and isinstance(calls[0][1], fake.Int8DynamicActivationInt8WeightConfig)
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)  # import fails
    with pytest.raises(RuntimeError, match="pip install torchao"):
        quantize_int8(model)

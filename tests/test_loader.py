"""tweetcls.load_run: every saved form of a classifier loads with the logits it was saved with."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tweetcls.commands import train
from tweetcls.compress.dynamic_int8 import quantize_int8, save_int8
from tweetcls.lora import inject_lora, lora_layers, merge_lora, save_adapter
from tweetcls import load_run
from tweetcls.core.build import load_classifier, load_tokenizer
from tweetcls.core.errors import UsageError
from tweetcls.core.runs import write_json

LABELS = ["anger", "calm", "joy"]
TEXTS = ["we love the sunshine today", "awful broken chair", "the river was quiet and so very calm"]


def logits(loaded_or_model, tokenizer=None):
    model = getattr(loaded_or_model, "model", loaded_or_model)
    tokenizer = tokenizer or loaded_or_model.tokenizer
    with torch.no_grad():
        return model.eval()(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory):
    """A LoRA model with mean pooling and trained-looking factors and head, saved in every form
    by the project's own writers, and its logits before saving."""
    root = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    model = load_classifier(tiny_model_dir, LABELS, pooling="mean")
    inject_lora(model, ["all-linear"], r=4, alpha=8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.1)
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=gen))
    tokenizer = load_tokenizer(tiny_model_dir)
    expected = logits(model, tokenizer)
    run = root / "run"
    save_adapter(model, run / "adapter", extra={"base_model": "tiny", "base_model_path": str(tiny_model_dir),
                                                "method": "lora", "label_names": LABELS, "multi_label": False,
                                                "pooling": "mean", "threshold": None})
    merge_lora(model)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    write_json(run / "results.json", {"method": "lora", "dataset": "tiny.csv", "label_names": LABELS,
                                      "multi_label": False, "pooling": "mean", "config": {"max_length": 64}})
    int8 = quantize_int8(model)
    save_int8(int8, root / "int8")
    tokenizer.save_pretrained(root / "int8")
    return {"root": root, "run": run, "expected": expected, "int8_expected": logits(int8, tokenizer)}


def test_a_run_directory_loads_its_merged_model(saved):
    loaded = load_run(saved["run"])
    assert loaded.kind == "run" and loaded.label_names == LABELS and not loaded.multi_label
    assert loaded.pooling == "mean" and loaded.max_length == 64 and loaded.results["dataset"] == "tiny.csv"
    torch.testing.assert_close(logits(loaded), saved["expected"], rtol=0, atol=1e-5)


def test_an_adapter_loads_on_its_base_model(saved):
    loaded = load_run(saved["run"] / "adapter")
    assert loaded.kind == "adapter" and loaded.label_names == LABELS and loaded.pooling == "mean"
    assert not lora_layers(loaded.model)  # merged for inference
    torch.testing.assert_close(logits(loaded), saved["expected"], rtol=0, atol=1e-5)


def test_an_int8_variant_loads_with_the_logits_it_had_before_saving(saved):
    loaded = load_run(saved["root"] / "int8")
    assert loaded.kind == "int8" and loaded.label_names == LABELS and loaded.pooling == "mean"
    assert torch.equal(logits(loaded), saved["int8_expected"])


def test_a_plain_model_folder_loads_with_its_own_labels_and_pooling(saved, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(saved["run"] / "model", plain)
    loaded = load_run(plain)
    assert loaded.kind == "model" and loaded.label_names == LABELS and loaded.pooling == "mean"
    assert loaded.results == {} and loaded.threshold is None
    torch.testing.assert_close(logits(loaded), saved["expected"], rtol=0, atol=1e-5)


def test_a_multi_label_threshold_travels_in_the_config(saved, tmp_path):
    from transformers import AutoConfig

    folder = tmp_path / "multi"
    shutil.copytree(saved["run"] / "model", folder)
    config = AutoConfig.from_pretrained(folder)
    config.problem_type, config.multi_label_threshold = "multi_label_classification", 0.3
    config.save_pretrained(folder)
    loaded = load_run(folder)
    assert loaded.multi_label and loaded.threshold == 0.3


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_a_real_runs_adapter_gives_its_model_logits(tiny_model_dir, tiny_csv, tmp_path, method):
    assert train.main(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
                       "--run-name", method, "--method", method, "--batch-size", "16", "--max-epochs", "1",
                       "--lr", "5e-3", "--no-progress-bar"]) == 0
    run, adapter = load_run(tmp_path / method), load_run(tmp_path / method / "adapter")
    assert adapter.label_names == run.label_names and adapter.pooling == run.pooling
    # the same merge of the same factors on the same (int8-rounded, for qlora) base: the same numbers
    assert torch.equal(logits(adapter), logits(run))
    # the temperature fitted on val travels with both forms
    fitted = json.loads((tmp_path / method / "results.json").read_text())["calibration"]["temperature"]
    assert fitted > 0 and run.temperature == pytest.approx(fitted) and adapter.temperature == pytest.approx(fitted)
    config = json.loads((tmp_path / method / "adapter" / "adapter_config.json").read_text())
    assert config["method"] == method and config["base_model_path"] == str(tiny_model_dir)


def test_a_folder_that_is_none_of_the_forms_is_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="holds no run .* or saved model"):
        load_run(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="is not a JSON object"):
        load_run(tmp_path)

"""bf16: ``--precision auto`` picks it where the hardware has it; a bf16 run computes its matrix
products in bf16 and still saves, merges and reports in fp32."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tweetcls.training import options as train_options
from tweetcls.lora import load_adapter
from tweetcls import Predictor, load_run
from tweetcls.core import precision
from tweetcls.core.build import load_classifier, load_tokenizer
from tweetcls.core.errors import UsageError

from conftest import train_tiny_run

TEXTS = ["we love the sunshine today", "awful broken chair", "the river was quiet and so very calm"]


@pytest.fixture
def cpu_flags(monkeypatch):
    """Set what the CPU claims: (avx512_bf16, amx, arm features); no GPU."""
    def set_flags(avx512_bf16=False, amx=False, arm=()):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(precision, "_arm_features", lambda: set(arm))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return set_flags


@pytest.mark.parametrize("flags, expected", [
    ({}, "32-true"),
    ({"avx512_bf16": True}, "bf16-mixed"),
    ({"amx": True}, "bf16-mixed"),
    ({"arm": ("fp", "asimd", "bf16")}, "bf16-mixed"),
    ({"arm": ("fp", "asimd")}, "32-true"),
])
def test_auto_follows_the_cpu_flags(cpu_flags, flags, expected):
    cpu_flags(**flags)
    assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision("auto", "cpu") == expected


def test_explicit_precisions_pass_through_and_other_devices_stay_fp32(cpu_flags):
    cpu_flags(avx512_bf16=True)
    assert precision.resolve_precision("32-true") == "32-true"
    assert precision.resolve_precision("16-mixed") == "16-mixed"
    assert precision.resolve_precision("auto", "mps") == "32-true"


def test_auto_on_a_gpu_stays_fp32_even_where_the_cpu_has_bf16(cpu_flags, monkeypatch):
    """Measured on an H100: at these model and batch sizes bf16 autocast slows a GPU run."""
    cpu_flags(avx512_bf16=True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert precision.resolve_precision("auto") == "32-true"
    assert precision.resolve_precision("auto", "gpu") == "32-true"
    assert precision.resolve_precision("auto", "cpu") == "bf16-mixed"  # a CPU run on a GPU machine
    assert precision.run_device("auto") == "cuda" and precision.run_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.run_device("auto") == "cpu" and precision.run_device("gpu") == "cpu"


def test_train_records_the_resolved_precision_not_auto(cpu_flags, tiny_model_dir, tiny_csv):
    cpu_flags()
    assert train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv)]).precision == "32-true"
    cpu_flags(avx512_bf16=True)
    assert train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv)]).precision == "bf16-mixed"


def test_bf16_autocast_runs_the_linears_in_bf16_and_returns_fp32_logits(tiny_model_dir):
    model = load_classifier(tiny_model_dir, ["a", "b", "c"]).eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    seen = []
    model.bert.encoder.layer[0].attention.self.query.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        fp32 = model(**inputs).logits
        bf16 = precision.Bf16Autocast(model)(**inputs).logits
    assert seen == [torch.float32, torch.bfloat16]
    assert bf16.dtype == torch.float32
    torch.testing.assert_close(bf16, fp32, rtol=0, atol=0.05)  # bf16 keeps ~3 significant digits


def test_the_classifier_hands_fp32_logits_to_its_loss_under_autocast(tiny_model_dir):
    from tweetcls.core.classifier import TextClassifier

    module = TextClassifier(load_classifier(tiny_model_dir, ["a", "b", "c"]), ["a", "b", "c"])
    batch = dict(load_tokenizer(tiny_model_dir)(TEXTS, padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert module(batch).dtype == torch.float32
        assert module.training_loss(batch).dtype == torch.float32


@pytest.fixture(scope="module")
def bf16_run(tiny_model_dir, tiny_csv, tmp_path_factory):
    # explicit, so that machines without native bf16 (where auto means fp32) test it too
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("bf16"), "--precision", "bf16-mixed")


def test_a_bf16_run_says_so_everywhere(bf16_run):
    results = json.loads((bf16_run / "results.json").read_text())
    assert results["precision"] == "bf16-mixed" and results["config"]["precision"] == "bf16-mixed"
    assert results["inference"]["precision"] == "bf16"
    from tweetcls.review.tensorboard import review_hparams, summary_lines

    assert review_hparams(results["config"], results)["3_data"].endswith(", bf16")
    assert "precision bf16-mixed" in "\n".join(summary_lines(results))


def test_a_bf16_runs_saved_model_is_fp32_and_loads_anywhere(bf16_run):
    for name in ("model/model.safetensors", "adapter/adapter_model.safetensors"):
        tensors = load_file(str(bf16_run / name))
        assert tensors and {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float32}
    loaded = load_run(bf16_run)
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_lora_merged_after_bf16_training_equals_the_unmerged_model_in_fp32(bf16_run, tiny_model_dir):
    merged = load_run(bf16_run)
    results = json.loads((bf16_run / "results.json").read_text())
    unmerged = load_classifier(tiny_model_dir, results["label_names"], pooling=results["pooling"])
    load_adapter(unmerged, bf16_run / "adapter")  # LoRA layers kept apart: W x + s B A x
    inputs = merged.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = unmerged.eval()(**inputs).logits
        got = merged.model.eval()(**inputs).logits
    assert expected.dtype == got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_the_bf16_backend_predicts_like_fp32(bf16_run):
    fp32, bf16 = Predictor.from_run(bf16_run, "torch"), Predictor.from_run(bf16_run, "bf16")
    assert bf16.backend == "bf16"
    p32, p16 = torch.from_numpy(fp32.probabilities(TEXTS)), torch.from_numpy(bf16.probabilities(TEXTS))
    assert p16.dtype == torch.float32
    torch.testing.assert_close(p16, p32, rtol=0, atol=0.02)
    assert not torch.equal(p16, p32)  # it really ran in bf16


def test_a_resumed_run_keeps_its_precision(bf16_run):
    with pytest.raises(UsageError, match="--precision bf16-mixed"):
        train_options.parse_args(["--resume", str(bf16_run), "--precision", "32-true"])


def test_the_ledger_has_a_bf16_row(bf16_run, tmp_path):
    from tweetcls.commands import evaluate

    out = tmp_path / "ledger"
    assert evaluate.main([str(bf16_run), "--compress", "none,bf16", "--latency-iters", "2",
                          "--output", str(out)]) == 0
    rows = {r["variant"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert set(rows) == {"none", "bf16"}
    assert rows["bf16"]["params_total"] == rows["none"]["params_total"]
    assert abs(rows["bf16"]["delta"]) <= 0.2  # a tiny test split: a prediction or two may flip


def test_teacher_logits_of_a_bf16_run_are_cached_apart(tiny_model_dir, bf16_run):
    from tweetcls.distill.teacher_cache import cached_teacher_logits

    labels = json.loads((bf16_run / "results.json").read_text())["label_names"]
    fp32, fp32_path = cached_teacher_logits(bf16_run / "model", TEXTS, labels, 32)
    bf16, bf16_path = cached_teacher_logits(bf16_run / "model", TEXTS, labels, 32, precision="bf16-mixed")
    assert fp32_path != bf16_path
    torch.testing.assert_close(bf16, fp32, rtol=0, atol=0.05)
    assert not torch.equal(bf16, fp32)

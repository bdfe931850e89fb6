"""Mean pooling: padding-blind, the same state dict, kept through save/load, copies and int8."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification

from tweetcls.compress.dynamic_int8 import load_int8, quantize_int8, save_int8
from tweetcls.core.build import load_classifier
from tweetcls.core.pooling import apply_pooling, checkpoint_pooling, masked_mean


def tiny(kind: str):
    torch.manual_seed(0)
    common = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 32, "num_labels": 3, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(**common)).eval()
    return MPNetForSequenceClassification(MPNetConfig(**common)).eval()


def padded_pair():
    ids = torch.tensor([[2, 11, 12, 13, 3, 0, 0], [2, 21, 22, 23, 24, 25, 3]])
    mask = (ids != 0).long()
    return ids, mask


def test_masked_mean_ignores_padding():
    hidden = torch.arange(12.0).view(1, 4, 3)
    assert torch.equal(masked_mean(hidden, torch.tensor([[1, 1, 0, 0]])), hidden[:, :2].mean(dim=1))
    assert torch.equal(masked_mean(hidden, None), hidden.mean(dim=1))


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_mean_pooled_logits_do_not_depend_on_padding_and_differ_from_cls(kind):
    cls_model = tiny(kind)
    mean_model = apply_pooling(copy.deepcopy(cls_model), "mean")
    assert sorted(mean_model.state_dict()) == sorted(cls_model.state_dict())
    ids, mask = padded_pair()
    with torch.no_grad():
        batched = mean_model(input_ids=ids, attention_mask=mask).logits[0]
        alone = mean_model(input_ids=ids[:1, :5], attention_mask=mask[:1, :5]).logits[0]
        first_token = cls_model(input_ids=ids, attention_mask=mask).logits[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    assert (batched - first_token).abs().max() > 1e-3


def test_the_mean_is_what_the_head_reads():
    model = apply_pooling(tiny("bert"), "mean")
    ids, mask = padded_pair()
    with torch.no_grad():
        hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = model.classifier(model.bert.pooler.activation(model.bert.pooler.dense(masked_mean(hidden, mask))))
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, expected)


def test_a_deep_copy_pools_with_its_own_modules():
    model = apply_pooling(tiny("bert"), "mean")
    twin = copy.deepcopy(model)
    assert twin.bert._pooling_reader is twin.bert.pooler
    ids, mask = padded_pair()
    with torch.no_grad():
        twin.bert.pooler.dense.weight.mul_(2)
        assert not torch.allclose(twin(input_ids=ids, attention_mask=mask).logits,
                                  model(input_ids=ids, attention_mask=mask).logits)


def test_pooling_survives_save_load_and_int8(tmp_path, tiny_model_dir):
    model = load_classifier(tiny_model_dir, ["a", "b", "c"], pooling="mean").eval()
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["pooling"] == "mean"
    again = load_classifier(tmp_path / "saved", ["a", "b", "c"]).eval()
    ids, mask = padded_pair()
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).logits,
                                   model(input_ids=ids, attention_mask=mask).logits)
        mean_logits = model(input_ids=ids, attention_mask=mask).logits
        cls_logits = apply_pooling(load_classifier(tmp_path / "saved", ["a", "b", "c"], pooling="cls").eval(), "cls")(
            input_ids=ids, attention_mask=mask).logits
        int8 = load_int8(save_int8(quantize_int8(model), tmp_path / "int8"))
        int8_logits = int8(input_ids=ids, attention_mask=mask).logits
    assert int8.config.pooling == "mean"
    assert (int8_logits - mean_logits).abs().max() < 0.2 * (cls_logits - mean_logits).abs().max()


def test_sentence_transformers_checkpoints_default_to_mean(tmp_path, tiny_model_dir):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    assert checkpoint_pooling(plain) == "cls" and load_classifier(plain, ["a", "b"]).config.pooling == "cls"
    st = tmp_path / "st"
    shutil.copytree(tiny_model_dir, st)
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": False,
                                                               "pooling_mode_mean_tokens": True}))
    assert checkpoint_pooling(st) == "mean" and load_classifier(st, ["a", "b"]).config.pooling == "mean"
    assert load_classifier(st, ["a", "b"], pooling="cls").config.pooling == "cls"


def test_an_onnx_ledger_variant_records_the_models_pooling(tmp_path, tiny_model_dir):
    """The ledger's ONNX variants (kept by --save-variants) say how they pool, for whoever loads them."""
    import onnx

    from tweetcls.compress.onnx_export import FP32_FILE, onnx_runtime_variant
    from tweetcls.core.build import load_tokenizer

    model = load_classifier(tiny_model_dir, ["a", "b", "c"], pooling="mean").eval()
    onnx_runtime_variant(model, load_tokenizer(tiny_model_dir), tmp_path / "onnx", None)
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "onnx" / FP32_FILE)).metadata_props}
    assert meta["pooling"] == "mean"

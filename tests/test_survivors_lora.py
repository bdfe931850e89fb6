"""lora/ against the formula it implements (y = W x + b + s B A x, s = alpha/r or alpha/sqrt(r)),
computed here independently, and the adapter file round trip with its head and scaling."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tweetcls.lora import inject_lora, lora_layers, mark_only_lora_as_trainable, merge_lora
from tweetcls.lora.adapter_io import ADAPTER_WEIGHTS, load_adapter, save_adapter
from tweetcls.lora.inject import find_target_linears
from tweetcls.lora.layer import LoRALinear, check_lora_hyperparameters
from tweetcls.core.errors import UsageError


def _trained(layer: LoRALinear, seed: int = 0) -> LoRALinear:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g))
    return layer


@pytest.mark.parametrize("rslora", [False, True])
def test_forward_and_merge_compute_the_formula(rslora):
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    x = torch.randn(3, 6)
    layer = LoRALinear(base, r=4, alpha=8, use_rslora=rslora)
    assert torch.allclose(layer(x), base(x))  # B starts at zero: the wrapper is the base layer
    _trained(layer)
    s = 8 / math.sqrt(4) if rslora else 8 / 4
    expected = x @ base.weight.T + base.bias + s * (x @ layer.lora_A.T) @ layer.lora_B.T
    assert torch.allclose(layer(x), expected, atol=1e-5)
    assert torch.allclose(layer.merged_linear()(x), expected, atol=1e-5)
    assert not any(p.requires_grad for p in base.parameters())
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}


def test_dropout_one_is_refused_as_documented():
    check_lora_hyperparameters(8, 16, 0.0)
    check_lora_hyperparameters(8, 16, 0.999)
    for dropout in (1.0, -0.1):
        with pytest.raises(UsageError, match=r"\[0, 1\)"):
            check_lora_hyperparameters(8, 16, dropout)


@pytest.fixture()
def classifier(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3).eval()


def test_targets_match_whole_name_components_and_never_the_head(classifier):
    with pytest.raises(UsageError, match="matches no linear layer"):
        find_target_linears(classifier, ["alue"])  # a suffix of 'value', not a component
    assert all(n.endswith(".self.value") for n in find_target_linears(classifier, ["self.value"]))
    wrapped = inject_lora(classifier, ["all-linear"], r=2, alpha=4)
    assert wrapped and not any(n.startswith(("classifier", "bert.pooler")) for n in wrapped)
    mark_only_lora_as_trainable(classifier)
    trainable = {n for n, p in classifier.named_parameters() if p.requires_grad}
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= trainable
    assert all("lora_" in n or n.startswith(("classifier", "bert.pooler")) for n in trainable)


def test_an_adapter_reloads_with_its_head_and_scaling_and_merges_to_the_same_outputs(classifier, tiny_model_dir,
                                                                                     tmp_path):
    from transformers import AutoModelForSequenceClassification

    inject_lora(classifier, ["query", "value"], r=2, alpha=4, use_rslora=True)
    for i, layer in enumerate(lora_layers(classifier).values()):
        _trained(layer, i)
    with torch.no_grad():
        classifier.classifier.weight.normal_()  # a trained head
    ids = torch.tensor([[2, 10, 20, 30, 3], [2, 11, 12, 3, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = classifier(input_ids=ids, attention_mask=mask).logits
    save_adapter(classifier, tmp_path)
    torch.manual_seed(1)
    fresh = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3).eval()
    load_adapter(fresh, tmp_path)
    assert all(layer.use_rslora for layer in lora_layers(fresh).values())
    with torch.no_grad():
        assert torch.allclose(fresh(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5)
        merge_lora(fresh)
        assert not lora_layers(fresh)
        assert torch.allclose(fresh(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5)


def test_an_adapter_tensor_of_another_shape_is_refused_in_one_line(classifier, tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    inject_lora(classifier, ["query"], r=2, alpha=4)
    save_adapter(classifier, tmp_path)
    tensors = load_file(str(tmp_path / ADAPTER_WEIGHTS))
    key = next(k for k in tensors if k.endswith("lora_A"))
    tensors[key] = tensors[key].T.contiguous()  # same size, other shape
    save_file(tensors, str(tmp_path / ADAPTER_WEIGHTS))
    fresh = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    with pytest.raises(UsageError, match="has shape"):
        load_adapter(fresh, tmp_path)

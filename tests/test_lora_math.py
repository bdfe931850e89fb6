"""The LoRA math, each test able to fail if the layer or the surgery were wrong."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from tweetcls.core.errors import UsageError
from tweetcls.lora import (
    LoRALinear,
    inject_lora,
    load_adapter,
    lora_layers,
    mark_only_lora_as_trainable,
    merge_lora,
    save_adapter,
)

from tweetcls.core.parameters import count_parameters
from tweetcls.core.surgery import head_module_names

LABELS = ["anger", "joy", "calm"]


def classifier(model_dir, seed: int = 0):
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(LABELS)).eval()


def batch(model_dir, texts=("we love the sunshine", "awful broken chair today", "the river was quiet")):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return tok(list(texts), padding=True, return_tensors="pt")


def randomize_b(model: nn.Module, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.1)


def test_zero_init_b_gives_exactly_the_base_output(tiny_model_dir):
    base = classifier(tiny_model_dir)
    adapted = copy.deepcopy(base)
    inject_lora(adapted, ["all-linear"], r=4, alpha=8, dropout=0.0)
    inputs = batch(tiny_model_dir)
    for layer in lora_layers(adapted).values():
        assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0
    with torch.no_grad():
        assert torch.equal(adapted(**inputs).logits, base(**inputs).logits)


def test_layer_computes_w_x_plus_scaled_b_a_x():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    layer = LoRALinear(base, r=3, alpha=6)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(4, 6)
    expected = x @ base.weight.T + base.bias + (6 / 3) * (x @ layer.lora_A.T @ layer.lora_B.T)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-5)


def test_rslora_scales_by_alpha_over_sqrt_r():
    torch.manual_seed(0)
    base = nn.Linear(8, 8)
    plain = LoRALinear(base, r=16, alpha=4)
    rs = LoRALinear(copy.deepcopy(base), r=16, alpha=4, use_rslora=True)
    assert plain.scaling == pytest.approx(4 / 16)
    assert rs.scaling == pytest.approx(4 / math.sqrt(16))
    with torch.no_grad():
        rs.lora_A.copy_(plain.lora_A)
        plain.lora_B.normal_()
        rs.lora_B.copy_(plain.lora_B)
    x = torch.randn(3, 8)
    # same factors: the rsLoRA update is sqrt(r) = 4 times the plain one
    torch.testing.assert_close(rs(x) - rs.base(x), 4 * (plain(x) - plain.base(x)), rtol=1e-5, atol=1e-6)


def test_merged_weight_is_w_plus_scaled_b_a_and_gives_the_unmerged_output(tiny_model_dir):
    model = classifier(tiny_model_dir)
    inject_lora(model, ["query", "value"], r=4, alpha=8)
    randomize_b(model)
    inputs = batch(tiny_model_dir)
    layers = lora_layers(model)
    originals = {n: l.base.weight.detach().clone() for n, l in layers.items()}
    with torch.no_grad():
        unmerged = model(**inputs).logits
        for name, layer in layers.items():
            merged = layer.merged_linear()
            # the weight itself, in float64: a 0.1% error in the update would be lost in the logits' tolerance
            expected = (originals[name].double()
                        + (8 / 4) * layer.lora_B.double() @ layer.lora_A.double())
            torch.testing.assert_close(merged.weight.double(), expected, rtol=0, atol=1e-6)
            assert torch.equal(merged.bias, layer.base.bias)
            assert torch.equal(layer.base.weight, originals[name])  # the wrapper is left as it was
    merge_lora(model)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, unmerged, rtol=0, atol=1e-5)


def test_a_lora_layer_on_its_own_freezes_its_base():
    base = nn.Linear(6, 5)
    layer = LoRALinear(base, r=2, alpha=4)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad


def test_merge_lora_returns_a_plain_model_that_loads_without_this_package(tiny_model_dir, tmp_path):
    model = classifier(tiny_model_dir)
    inject_lora(model, ["query", "value"], r=4, alpha=8)
    randomize_b(model)
    inputs = batch(tiny_model_dir)
    with torch.no_grad():
        expected = model(**inputs).logits
    merge_lora(model)
    assert not lora_layers(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=0, atol=1e-5)


def test_at_step_zero_grad_a_is_zero_and_grad_b_is_not(tiny_model_dir):
    model = classifier(tiny_model_dir)
    inject_lora(model, ["query", "value"], r=4, alpha=8)
    mark_only_lora_as_trainable(model)
    out = model(**batch(tiny_model_dir), labels=torch.tensor([1, 0, 2]))
    out.loss.backward()
    for name, layer in lora_layers(model).items():
        assert layer.lora_A.grad is not None and torch.count_nonzero(layer.lora_A.grad) == 0, name
        assert layer.lora_B.grad is not None and torch.count_nonzero(layer.lora_B.grad) > 0, name
        assert layer.base.weight.grad is None


def test_training_changes_only_lora_and_head(tiny_model_dir):
    model = classifier(tiny_model_dir).train()
    inject_lora(model, ["query", "value"], r=4, alpha=8, dropout=0.1)
    mark_only_lora_as_trainable(model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    inputs, labels = batch(tiny_model_dir), torch.tensor([1, 0, 2])
    for _ in range(3):
        optim.zero_grad()
        model(**inputs, labels=labels).loss.backward()
        optim.step()
    heads = head_module_names(model)
    assert heads == ["classifier", "bert.pooler"]
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    allowed = {k for k in before if k.endswith((".lora_A", ".lora_B")) or k.split(".")[0] == "classifier"
               or k.startswith("bert.pooler.")}
    assert changed, "nothing trained"
    assert changed <= allowed, sorted(changed - allowed)
    assert any(k.endswith(".lora_A") for k in changed) and any(k.startswith("classifier") for k in changed)


def test_trainable_count_in_closed_form_on_the_real_minilm_config(minilm_dir):
    config = AutoConfig.from_pretrained(minilm_dir, num_labels=4)
    model = AutoModelForSequenceClassification.from_config(config)
    total_before, _ = count_parameters(model)
    r, h, layers, labels = 8, config.hidden_size, config.num_hidden_layers, 4
    names = inject_lora(model, r=r, alpha=16)  # default for BERT: query and value
    mark_only_lora_as_trainable(model)
    total, trainable = count_parameters(model)
    assert len(names) == 2 * layers and all(n.endswith((".query", ".value")) for n in names)
    lora = 2 * layers * r * (h + h)  # each target: A r x in, B out x r
    head = (h * h + h) + (h * labels + labels)  # pooler dense + classifier
    assert trainable == lora + head == 73_728 + 149_380
    assert total == total_before + lora


def test_adapter_round_trip_reproduces_logits(tiny_model_dir, tmp_path):
    model = classifier(tiny_model_dir)
    inject_lora(model, ["query", "value", "intermediate.dense"], r=4, alpha=8, dropout=0.1)
    mark_only_lora_as_trainable(model)
    randomize_b(model)
    with torch.no_grad():
        model.classifier.weight.normal_()
    model.eval()
    inputs = batch(tiny_model_dir)
    with torch.no_grad():
        expected = model(**inputs).logits
    save_adapter(model, tmp_path / "adapter")
    files = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors"]
    fresh = classifier(tiny_model_dir, seed=123)  # different random head: the adapter must bring its own
    load_adapter(fresh, tmp_path / "adapter")
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(**inputs).logits, expected)


def test_adapter_for_another_model_is_refused(tiny_model_dir, tmp_path):
    model = classifier(tiny_model_dir)
    inject_lora(model, ["query"], r=4, alpha=8)
    save_adapter(model, tmp_path)
    other = classifier(tiny_model_dir)
    inject_lora(other, ["query"], r=2, alpha=8)
    with pytest.raises(UsageError, match="has shape"):
        load_adapter(other, tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"r": 0}, r"^r must be a positive integer \(the LoRA rank\), got 0"),
    ({"r": -2}, "^r must be a positive integer"),
    ({"alpha": 0}, "^alpha must be > 0"),
    ({"dropout": 1.0}, r"^dropout must be in \[0, 1\)"),
    ({"dropout": -0.1}, r"^dropout must be in \[0, 1\)"),
])
def test_bad_hyperparameters_are_clear_errors(tiny_model_dir, kwargs, message):
    """In the library's own parameter names (a Python user never typed --lora-r); train.py's
    one line names the flag instead (tests/test_bad_input.py: report maps them)."""
    model = classifier(tiny_model_dir)
    with pytest.raises(UsageError, match=message):
        inject_lora(model, ["query"], **({"r": 4, "alpha": 8} | kwargs))
    assert not lora_layers(model)


def test_unmatched_target_lists_the_linear_layers(tiny_model_dir):
    model = classifier(tiny_model_dir)
    with pytest.raises(UsageError) as err:
        inject_lora(model, ["q_proj"], r=4, alpha=8)
    message = str(err.value)
    assert "'q_proj' matches no linear layer" in message
    for name in ("query", "key", "value", "dense"):
        assert name in message
    assert "classifier" not in message  # the head is trained in full, never wrapped


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_same_logits_as_peft_with_the_same_factors(which, tiny_model_dir, request):
    peft = pytest.importorskip("peft")
    model_dir = tiny_model_dir if which == "tiny" else request.getfixturevalue("minilm_dir")
    ours = classifier(model_dir)
    theirs = copy.deepcopy(ours)
    inject_lora(ours, ["query", "value"], r=4, alpha=8, dropout=0.0)
    randomize_b(ours)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"],
                             task_type="SEQ_CLS")
    theirs = peft.get_peft_model(theirs, config)
    copied = 0
    for name, module in theirs.named_modules():
        if isinstance(module, peft.tuners.lora.LoraLayer):
            own = ours.get_submodule(name.removeprefix("base_model.model."))
            with torch.no_grad():
                module.lora_A["default"].weight.copy_(own.lora_A)
                module.lora_B["default"].weight.copy_(own.lora_B)
            copied += 1
    assert copied == len(lora_layers(ours)) > 0
    inputs = batch(model_dir)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a, b = ours(**inputs).logits, theirs(**inputs).logits
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    base = classifier(model_dir)
    with torch.no_grad():
        assert (a - base(**inputs).logits).abs().max() > 1e-4  # the adapters really did something

"""Students built by copying teacher blocks: exact copies, exact logits, clear errors."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    MPNetConfig,
    MPNetForSequenceClassification,
)

from tweetcls.core.errors import UsageError
from tweetcls.distill import copy_layers, find_block_stack, select_layers


def tiny(kind: str, layers: int = 6):
    torch.manual_seed(0)
    common = dict(vocab_size=120, num_labels=3)
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                                        intermediate_size=40, **common)).eval()
    if kind == "mpnet":
        return MPNetForSequenceClassification(MPNetConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                                          intermediate_size=40, **common)).eval()
    return DistilBertForSequenceClassification(DistilBertConfig(dim=32, n_layers=layers, n_heads=2, hidden_dim=40,
                                                                **common)).eval()


def ids():
    return torch.randint(5, 120, (2, 9), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("strategy, expected", [
    ("odd", [0, 2, 4, 6, 8, 10]), ("even", [1, 3, 5, 7, 9, 11]), ("distilbert", [0, 2, 4, 7, 9, 11]),
    ("bottom", [0, 1, 2, 3, 4, 5]), ("top", [6, 7, 8, 9, 10, 11]), ("uniform", [0, 2, 4, 7, 9, 11]),
])
def test_strategies_on_a_12_layer_teacher(strategy, expected):
    assert select_layers(strategy, 12) == expected


def test_uniform_and_explicit_lists():
    assert select_layers("uniform", 12, 4) == [0, 4, 7, 11]
    assert select_layers([0, 3, 6, 9], 12) == [0, 3, 6, 9]


@pytest.mark.parametrize("args, message", [
    (("odd", 12, 8), "odd takes every other layer: 6 of the teacher's 12, not 8"),
    (("bottom", 6, 8), "cannot take 8 layers from a teacher with 6"),
    (("uniform", 12, 0), "cannot take 0 layers"),
    (([0, 12], 12), "layer index 12 is out of range: the teacher has layers 0..11"),
    (([1, 1, 2], 12), "^layers name a layer twice: 1,1,2$"),
    (("sparse", 12), "unknown layer strategy 'sparse'"),
    (("distilbert", 6), "distilbert selects 6 of 12 layers"),
])
def test_bad_layer_requests_are_clear_errors(args, message):
    with pytest.raises(UsageError, match=message):
        select_layers(*args)


@pytest.mark.parametrize("kind, stack", [("bert", "bert.encoder.layer"), ("mpnet", "mpnet.encoder.layer"),
                                         ("distilbert", "distilbert.transformer.layer")])
def test_copied_blocks_are_bit_identical_and_the_rest_is_copied(kind, stack):
    teacher = tiny(kind)
    assert find_block_stack(teacher)[0] == stack
    layers = select_layers("even", 6)  # 1, 3, 5
    student = copy_layers(teacher, layers)
    assert student.config.num_hidden_layers == 3 and type(student) is type(teacher)
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for key, value in s_state.items():
        if key.startswith(stack + "."):
            index, _, rest = key[len(stack) + 1:].partition(".")
            source = f"{stack}.{layers[int(index)]}.{rest}"
        else:
            source = key  # embeddings, relative attention bias, pooler, head
        assert torch.equal(value, t_state[source]), key
    if kind == "mpnet":
        assert any("relative_attention_bias" in k for k in s_state)


@pytest.mark.parametrize("kind", ["bert", "mpnet", "distilbert"])
def test_copying_all_layers_in_order_reproduces_the_teacher(kind):
    teacher = tiny(kind)
    student = copy_layers(teacher, list(range(6)))
    with torch.no_grad():
        assert torch.equal(student(input_ids=ids()).logits, teacher(input_ids=ids()).logits)
    dropped = copy_layers(teacher, [0, 1, 2, 3, 5])
    with torch.no_grad():
        assert not torch.equal(dropped(input_ids=ids()).logits, teacher(input_ids=ids()).logits)


def test_real_minilm_to_a_3_layer_student_saves_and_reloads(minilm_dir, tmp_path):
    teacher = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=4).eval()
    student = copy_layers(teacher, select_layers("odd", 6))  # 0, 2, 4
    assert student.config.num_hidden_layers == 3
    for s, t in zip(student.bert.encoder.layer, [teacher.bert.encoder.layer[i] for i in (0, 2, 4)]):
        for (name, a), b in zip(s.state_dict().items(), t.state_dict().values()):
            assert torch.equal(a, b), name
    student.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.num_hidden_layers == 3 and reloaded.config.distilled_from_layers == [0, 2, 4]
    x = torch.randint(1000, 20000, (2, 12))
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=x).logits, student(input_ids=x).logits)
    total = lambda m: sum(p.numel() for p in m.parameters())
    assert total(student) == total(teacher) - 3 * sum(p.numel() for p in teacher.bert.encoder.layer[1].parameters())


def test_a_model_without_a_block_stack_is_refused():
    from torch import nn

    class Flat(nn.Module):
        config = type("Config", (), {"num_hidden_layers": 4})()

        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(*[nn.Linear(4, 4) for _ in range(4)])  # not a ModuleList

    with pytest.raises(UsageError, match="cannot find the transformer block stack of Flat"):
        copy_layers(Flat(), [0, 1])

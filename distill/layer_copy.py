"""Build a shallower student by copying chosen transformer blocks of a teacher.

Everything outside the block stack is copied as is: embeddings, MPNet's shared relative
attention bias, the pooler and the classification head. The stack is found from the
model's structure (the ``nn.ModuleList`` holding ``num_hidden_layers`` blocks), so BERT,
RoBERTa, MPNet and DistilBERT work without a name table.

Layer numbering: ``odd`` and ``even`` count from 1, as papers do ("the odd layers
1, 3, ..., 11" of a 12-layer teacher); the lists they return, and ``--layers``, are
0-based module indices. So ``odd`` = 0,2,4,6,8,10 and ``even`` = 1,3,5,7,9,11.
"""

from __future__ import annotations

import copy

from torch import nn
from transformers import PreTrainedModel

from tweetcls.core.errors import ParameterError, UsageError

STRATEGIES = ("odd", "even", "distilbert", "bottom", "top", "uniform")
DISTILBERT_12_TO_6 = [0, 2, 4, 7, 9, 11]  # the choice in Sanh et al.'s DistilBERT training code


def select_layers(strategy: str | list[int], teacher_layers: int, num_layers: int | None = None) -> list[int]:
    """0-based teacher block indices for the student, in order."""
    if isinstance(strategy, (list, tuple)):
        chosen = list(strategy)
        bad = [i for i in chosen if not 0 <= i < teacher_layers]
        if bad:
            raise UsageError(f"layer index {bad[0]} is out of range: the teacher has layers 0..{teacher_layers - 1}")
        if len(set(chosen)) != len(chosen):
            raise ParameterError("layers", f"name a layer twice: {','.join(map(str, chosen))}")
        if chosen != sorted(chosen):  # [1, 0] built a student whose blocks ran in reverse, without a word
            raise ParameterError("layers", f"must list the teacher's layers in increasing order (the student runs "
                                           f"them in that order): {','.join(map(str, chosen))}; use "
                                           f"{','.join(map(str, sorted(chosen)))}")
        if not chosen:
            raise ParameterError("layers", "need at least one layer index")
        return chosen
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown layer strategy {strategy!r}; use {', '.join(STRATEGIES)} or a list like 0,3,6,9")
    if strategy in ("odd", "even"):
        chosen = list(range(0 if strategy == "odd" else 1, teacher_layers, 2))
        if num_layers is not None and num_layers != len(chosen):
            raise UsageError(f"{strategy} takes every other layer: {len(chosen)} of the teacher's {teacher_layers}, "
                             f"not {num_layers}; use uniform or --layers for another depth")
        return chosen
    n = num_layers if num_layers is not None else teacher_layers // 2
    if not 0 < n <= teacher_layers:
        raise UsageError(f"cannot take {n} layers from a teacher with {teacher_layers}")
    if strategy == "distilbert":
        if (teacher_layers, n) != (12, 6):
            raise UsageError(f"distilbert selects 6 of 12 layers; this teacher has {teacher_layers} and {n} were asked")
        return list(DISTILBERT_12_TO_6)
    if strategy == "bottom":
        return list(range(n))
    if strategy == "top":
        return list(range(teacher_layers - n, teacher_layers))
    if n == 1:
        return [teacher_layers - 1]
    return [round(i * (teacher_layers - 1) / (n - 1)) for i in range(n)]  # uniform, first and last included


def find_block_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(dotted name, module) of the ModuleList holding the transformer blocks."""
    depth = getattr(model.config, "num_hidden_layers", None)
    candidates = [
        (name, module) for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == depth and len(module) > 0
        and len({type(block) for block in module}) == 1
    ]
    if not candidates:
        raise UsageError(f"cannot find the transformer block stack of {type(model).__name__} "
                         f"(no list of {depth} identical blocks); layer copying supports BERT-like encoders")
    return min(candidates, key=lambda c: c[0].count("."))  # the outermost such list


def copy_layers(teacher: PreTrainedModel, layers: list[int]) -> PreTrainedModel:
    """A new model of the teacher's class with ``len(layers)`` blocks copied from ``layers``."""
    stack_name, stack = find_block_stack(teacher)
    layers = select_layers(list(layers), len(stack))
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    prefix = stack_name + "."
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix):].partition(".")
            if int(index) in layers:
                state[f"{prefix}{layers.index(int(index))}.{rest}"] = value.clone()
        else:
            state[key] = value.clone()
    student.load_state_dict(state, strict=True)
    student.config.distilled_from_layers = layers  # saved in config.json: where the blocks came from
    return student.train(teacher.training)

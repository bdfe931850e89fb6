"""Teachers and students for ``train.py --method distill``."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from tweetcls.core.errors import UsageError
from tweetcls.distill.layer_copy import copy_layers, select_layers
from tweetcls.distill.teacher_cache import align_labels
from tweetcls.core.build import load_classifier
from tweetcls.core.pooling import apply_checkpoint_pooling, apply_pooling
from tweetcls.core.parameters import count_parameters
from tweetcls.core.resolve import resolve_model
from tweetcls.core.surgery import config_label_names, output_layer


def teacher_model_dir(teacher: str) -> Path:
    """A run directory of train.py (its saved model) or any fine-tuned classifier."""
    run_model = Path(teacher) / "model"
    if (Path(teacher) / "results.json").is_file() and (run_model / "config.json").is_file():
        return run_model
    return resolve_model(teacher)


def parse_layers(text: str) -> str | list[int]:
    """'odd' stays a strategy name; '0,3,6,9' becomes a list of 0-based indices."""
    if any(ch.isdigit() for ch in text):
        try:
            return [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise UsageError(f"--layers {text!r}: give a strategy name or comma-separated integers") from None
    return text


def reorder_labels(model: PreTrainedModel, order: list[int], label_names: list[str]) -> None:
    """Permute the head's output rows so output i is ``label_names[i]`` (labels match by name)."""
    if order != list(range(len(order))):
        last = output_layer(model)
        with torch.no_grad():
            last.weight.copy_(last.weight[order])
            if last.bias is not None:
                last.bias.copy_(last.bias[order])
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {name: i for i, name in enumerate(label_names)}


def load_teacher(teacher_dir: Path, label_names: list[str]) -> PreTrainedModel:
    teacher = AutoModelForSequenceClassification.from_pretrained(str(teacher_dir))
    apply_checkpoint_pooling(teacher, teacher_dir)
    labels = config_label_names(teacher.config)
    if labels == [f"LABEL_{i}" for i in range(len(labels))]:
        raise UsageError(f"teacher {teacher_dir} is not a fine-tuned classifier (no label names); "
                         "train one first: python train.py --method teacher")
    reorder_labels(teacher, align_labels(labels, label_names), label_names)
    return teacher


def build_student(teacher_dir: Path, label_names: list[str], multi_label: bool,
                  layers: str | None, student_dir: Path | None,
                  pooling: str = "auto") -> tuple[PreTrainedModel, PreTrainedModel, dict]:
    """(student, teacher, info): the student is copied from the teacher's layers, or an
    independent pretrained model; the teacher is returned for losses that run it.

    ``pooling`` "auto": a copied student pools as its teacher does, an independent one as
    its own checkpoint was trained to.
    """
    teacher = load_teacher(teacher_dir, label_names)
    teacher_total, _ = count_parameters(teacher)
    if student_dir is not None:
        student, chosen = load_classifier(student_dir, label_names, multi_label, pooling), None
    else:
        chosen = select_layers(parse_layers(layers), teacher.config.num_hidden_layers)
        # the hooks of mean pooling are not copied with the layers
        student = apply_pooling(copy_layers(teacher, chosen), teacher.config.pooling if pooling == "auto" else pooling)
    student_total, _ = count_parameters(student)
    info = {"teacher": str(teacher_dir), "teacher_params": teacher_total, "layers": chosen,
            "layer_strategy": layers, "student": str(student_dir) if student_dir else None,
            "student_to_teacher_params": student_total / teacher_total}
    return student.train(), teacher, info

"""Build a sequence classifier and its tokenizer for a dataset's label set."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from core.errors import UsageError
from models.pooling import apply_checkpoint_pooling, apply_pooling
from models.resolve import resolve_model


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot load a tokenizer from {model_dir}: {str(err).splitlines()[0]}") from None


def load_classifier(
    model_dir: str | Path,
    label_names: list[str],
    multi_label: bool = False,
    pooling: str = "auto",
) -> PreTrainedModel:
    """``AutoModelForSequenceClassification`` with ``id2label``/``label2id`` from the data.

    A head trained for another label set is replaced by a fresh one of the right size.
    ``pooling`` "auto" classifies from what the checkpoint was trained with (see
    models/pooling.py): the mean for sentence-transformers models, else the first token.
    """
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir),
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError, SafetensorError) as err:
        raise UsageError(f"cannot load a classifier from {model_dir}: {str(err).splitlines()[0]}") from None
    try:
        return apply_checkpoint_pooling(model, model_dir) if pooling == "auto" else apply_pooling(model, pooling)
    except ValueError as err:
        raise UsageError(str(err)) from None


def max_model_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest input the model accepts (position table size, minus RoBERTa-style offsets)."""
    limit = getattr(model.config, "max_position_embeddings", None) or 10**9
    if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        limit -= 2  # positions start after the padding index
    tok_limit = tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else limit
    return min(limit, tok_limit)


__all__ = ["load_classifier", "load_tokenizer", "max_model_length", "resolve_model"]

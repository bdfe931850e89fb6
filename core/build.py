"""Build a sequence classifier and its tokenizer for a dataset's label set."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

from safetensors import SafetensorError
from torch import nn
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel,
                          PreTrainedTokenizerBase)

from tweetcls.core.errors import UsageError
from tweetcls.core.pooling import apply_checkpoint_pooling, apply_pooling
from tweetcls.core.surgery import architecture, config_label_names, output_layer


# A tokenizer needs its vocabulary: one of these files (fast, WordPiece, BPE, SentencePiece).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "sentencepiece.model")


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    """The folder's own tokenizer. A folder without vocabulary files is refused: transformers
    would otherwise build an empty tokenizer from config.json that maps every word to [UNK]."""
    if Path(model_dir).is_dir() and not any((Path(model_dir) / name).is_file() for name in TOKENIZER_FILES):
        raise UsageError(f"{model_dir} has no tokenizer files (none of {', '.join(TOKENIZER_FILES[:3])}, ...); "
                         "copy them from the model it was trained from, e.g. tokenizer.save_pretrained(folder)")
    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot load a tokenizer from {model_dir}: {str(err).splitlines()[0]}") from None


def load_classifier(
    model_dir: str | Path,
    label_names: list[str],
    multi_label: bool = False,
    pooling: str = "auto",
    trained: bool = False,
) -> PreTrainedModel:
    """``AutoModelForSequenceClassification`` with ``id2label``/``label2id`` from the data.

    A head trained for another label set is replaced by a fresh one of the right size, unless
    ``trained`` (a saved classifier to be used as it is): then a weight whose shape disagrees with
    config.json, or one missing from the folder, is refused (see ``check_all_loaded``).
    ``pooling`` "auto" classifies from what the checkpoint was trained with (see
    core/pooling.py): the mean for sentence-transformers models, else the first token.
    """
    try:
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir),
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    except pickle.UnpicklingError:
        raise UsageError(f"refusing {model_dir}: its weights file holds pickled objects other than tensors, which "
                         "could run code; convert it to safetensors where you trust it") from None
    except (OSError, ValueError, SafetensorError) as err:
        raise UsageError(f"cannot load a classifier from {model_dir}: {str(err).splitlines()[0]}") from None
    if trained:
        check_all_loaded(model_dir, loading, len(label_names))
    saved = trained_label_names(model_dir)
    if saved is not None and saved != list(label_names) and len(saved) == len(label_names):
        reset_output_layer(model)  # another task's labels; a different count was already re-initialised above
    try:
        return apply_checkpoint_pooling(model, model_dir) if pooling == "auto" else apply_pooling(model, pooling)
    except ValueError as err:
        raise UsageError(str(err)) from None


def check_all_loaded(model_dir: str | Path, loading: dict, num_labels: int) -> None:
    """Refuse a saved classifier that ``from_pretrained`` could only complete with random weights:
    a head sized differently from config.json's label count (an edited or swapped config.json)
    or weights absent from the folder. Its answers would change on every load, with no error."""
    mismatched = sorted(loading.get("mismatched_keys") or [], key=lambda item: item[0])
    if mismatched:
        key, saved_shape, wanted = mismatched[0]
        if key.endswith(".bias") and len(mismatched) > 1:
            key, saved_shape, wanted = mismatched[1]
        raise UsageError(f"refusing {model_dir}: its saved {key} has shape {list(saved_shape)}, config.json (naming "
                         f"{num_labels} labels) asks for {list(wanted)}; restore the config.json saved with these "
                         "weights: loading would replace them with random ones")
    missing = sorted(loading.get("missing_keys") or [])
    if missing:
        raise UsageError(f"refusing {model_dir}: its weights lack {missing[0]}" +
                         (f" and {len(missing) - 1} more" if len(missing) > 1 else "") +
                         ", which would start random (a base model has no trained head: train one from it with train.py --model)")


def trained_label_names(model_dir: str | Path) -> list[str] | None:
    """The labels a saved classifier was trained for, in output order; None for a base model
    (Hugging Face's placeholder names LABEL_0, LABEL_1, ...)."""
    try:
        config = AutoConfig.from_pretrained(str(model_dir))
    except (OSError, ValueError):
        return None
    names = config_label_names(config)
    return None if placeholder_labels(names) else names


def placeholder_labels(names: list[str]) -> bool:
    """Hugging Face's names for a head nobody named: LABEL_0, LABEL_1, ..."""
    return all(re.fullmatch(r"LABEL_\d+", name) for name in names)


def reset_output_layer(model: PreTrainedModel) -> None:
    """Give the head a fresh output layer, as transformers does when the label count differs: a
    model trained on another task with as many labels must not start with label i meaning its old i."""
    layer = output_layer(model)
    nn.init.normal_(layer.weight, std=getattr(model.config, "initializer_range", 0.02))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def max_model_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest input the model accepts (position table size, minus RoBERTa-style offsets)."""
    limit = getattr(model.config, "max_position_embeddings", None) or 10**9
    if architecture(model) in ("roberta", "xlm-roberta", "mpnet", "camembert"):
        limit -= 2  # positions start after the padding index
    tok_limit = tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else limit
    return min(limit, tok_limit)


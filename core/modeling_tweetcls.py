"""Mean pooling for Hugging Face sequence classifiers: the one implementation, and the file that
travels inside every saved mean-pooled model.

HF's BERT, MPNet and RoBERTa classifiers read the first token's vector; sentence-transformers
checkpoints (all-MiniLM-L6-v2, all-mpnet-base-v2) were trained on the masked mean of all token
vectors. Two forward pre-hooks make a classifier read the mean instead, without touching the
state dict: one on the backbone keeps the attention mask, one on the module that reads
position 0 (BERT's pooler, the MPNet/RoBERTa head) hands it the masked mean in position 0.

A mean-pooled model is saved with ``model_type`` ``tweetcls_mean_<type>`` and an ``auto_map``
naming the classes below, and this file is copied beside its weights. So a plain client cannot
silently read the first token: transformers refuses the folder unless it is loaded with
``trust_remote_code=True``, which runs this file (torch and transformers only; read it first),
or in a process that imported tweetcls, which registers these classes itself and runs no code
from the folder. This file must stay self-contained: no import from this project.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (AutoConfig, AutoModel, AutoModelForSequenceClassification, BertConfig, BertModel,
                          BertForSequenceClassification, MPNetConfig, MPNetModel, MPNetForSequenceClassification,
                          RobertaConfig, RobertaModel, RobertaForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaModel, XLMRobertaForSequenceClassification)

MODEL_TYPE_PREFIX = "tweetcls_mean_"


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the sequence of ``hidden`` (batch, seq, dim), padding excluded."""
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask[:, : hidden.shape[1], None].to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def first_token_reader(model: nn.Module) -> nn.Module:
    """The module of ``model`` that classifies from position 0."""
    backbone = model.base_model
    if getattr(backbone, "pooler", None) is not None and hasattr(model, "bert"):
        return backbone.pooler  # BERT: pooler(hidden)[:, 0] -> dense -> tanh -> classifier
    head = getattr(model, "classifier", None)
    if head is not None and hasattr(head, "dense") and hasattr(head, "out_proj"):
        return head  # MPNet / RoBERTa: classifier(hidden) reads hidden[:, 0]
    raise ValueError(f"mean pooling is not supported for {type(model).__name__}; pool the first token (pooling=\"cls\")")


def _keep_mask(backbone: nn.Module, args: tuple, kwargs: dict) -> None:
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    backbone._pooling_reader._pooling_mask = mask


def _mean_in_first_position(reader: nn.Module, args: tuple) -> tuple:
    hidden = args[0]
    pooled = masked_mean(hidden, getattr(reader, "_pooling_mask", None))
    reader._pooling_mask = None
    return (pooled.unsqueeze(1), *args[1:])


def install_mean_pooling(model: nn.Module) -> nn.Module:
    """Make ``model`` classify from the masked mean of its last hidden states (once)."""
    if getattr(model, "_mean_pooling", False):
        return model
    reader = first_token_reader(model)
    backbone = model.base_model
    object.__setattr__(backbone, "_pooling_reader", reader)  # a reference, not a second submodule
    backbone.register_forward_pre_hook(_keep_mask, with_kwargs=True)
    reader.register_forward_pre_hook(_mean_in_first_position)
    model._mean_pooling = True
    model.config.pooling = "mean"
    return model


class MeanPooledBertConfig(BertConfig):
    model_type = MODEL_TYPE_PREFIX + "bert"


class MeanPooledBertModel(BertModel):
    config_class = MeanPooledBertConfig


class MeanPooledBertForSequenceClassification(BertForSequenceClassification):
    config_class = MeanPooledBertConfig

    def __init__(self, config):
        super().__init__(config)
        install_mean_pooling(self)


class MeanPooledMPNetConfig(MPNetConfig):
    model_type = MODEL_TYPE_PREFIX + "mpnet"


class MeanPooledMPNetModel(MPNetModel):
    config_class = MeanPooledMPNetConfig


class MeanPooledMPNetForSequenceClassification(MPNetForSequenceClassification):
    config_class = MeanPooledMPNetConfig

    def __init__(self, config):
        super().__init__(config)
        install_mean_pooling(self)


class MeanPooledRobertaConfig(RobertaConfig):
    model_type = MODEL_TYPE_PREFIX + "roberta"


class MeanPooledRobertaModel(RobertaModel):
    config_class = MeanPooledRobertaConfig


class MeanPooledRobertaForSequenceClassification(RobertaForSequenceClassification):
    config_class = MeanPooledRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        install_mean_pooling(self)


class MeanPooledXLMRobertaConfig(XLMRobertaConfig):
    model_type = MODEL_TYPE_PREFIX + "xlm-roberta"


class MeanPooledXLMRobertaModel(XLMRobertaModel):
    config_class = MeanPooledXLMRobertaConfig


class MeanPooledXLMRobertaForSequenceClassification(XLMRobertaForSequenceClassification):
    config_class = MeanPooledXLMRobertaConfig

    def __init__(self, config):
        super().__init__(config)
        install_mean_pooling(self)


# base model_type -> (config, encoder, classifier) of its mean-pooled form
MEAN_POOLED = {
    "bert": (MeanPooledBertConfig, MeanPooledBertModel, MeanPooledBertForSequenceClassification),
    "mpnet": (MeanPooledMPNetConfig, MeanPooledMPNetModel, MeanPooledMPNetForSequenceClassification),
    "roberta": (MeanPooledRobertaConfig, MeanPooledRobertaModel, MeanPooledRobertaForSequenceClassification),
    "xlm-roberta": (MeanPooledXLMRobertaConfig, MeanPooledXLMRobertaModel,
                    MeanPooledXLMRobertaForSequenceClassification),
}


def register_mean_pooled_classes() -> None:
    """Teach this process's transformers Auto classes the mean-pooled types (no code from a folder runs)."""
    for config_class, encoder_class, classifier_class in MEAN_POOLED.values():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, encoder_class, exist_ok=True)
        AutoModelForSequenceClassification.register(config_class, classifier_class, exist_ok=True)

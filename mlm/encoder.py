"""An encoder with a masked-LM head for continued pretraining, and the encoder saved back
in the form ``train.py --model`` loads.

Sentence-embedding checkpoints such as MiniLM-L6 ship without an MLM head; transformers
creates one (its decoder tied to the word embeddings, the transform layer and bias new)
and says so. The saved encoder keeps the checkpoint's own pooler (an MLM model has none),
so a classifier built on it starts exactly as one built on the original would, apart from
what masked-LM training changed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoModelForMaskedLM

from tweetcls.core.errors import UsageError


def masked_lm_for(model_dir: Path) -> tuple[nn.Module, list[str]]:
    """(``AutoModelForMaskedLM`` of the checkpoint with its decoder tied to the input embeddings,
    the head weights that were newly created because the checkpoint lacks them)."""
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(model_dir, output_loading_info=True)
    except ValueError as err:  # an architecture without a masked-LM form (e.g. a decoder-only model)
        raise UsageError(f"{model_dir} has no masked-LM form ({str(err).splitlines()[0]}); use an encoder "
                         "such as minilm-l6 or mpnet-base") from None
    model.tie_weights()
    return model, sorted(info.get("missing_keys", []))


def mlm_head(model: nn.Module) -> nn.Module:
    """The part of a masked-LM model after the encoder (BERT's ``cls``, MPNet's ``lm_head``)."""
    heads = [module for name, module in model.named_children() if name != model.base_model_prefix]
    if len(heads) != 1:
        raise ValueError(f"expected one head beside the encoder, found {len(heads)}")
    return heads[0]


def masked_positions_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                            targets: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the ``targets`` positions only: the 30k-wide decoder is the largest
    matrix product of a small encoder, and 85% of positions have nothing to predict."""
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return mlm_head(model)(hidden[targets])


def save_encoder(model: nn.Module, original_dir: Path, folder: Path) -> None:
    """The adapted encoder as a plain ``AutoModel`` checkpoint (with the original's pooler)."""
    from tweetcls.core.pooling import checkpoint_pooling

    encoder = AutoModel.from_pretrained(original_dir)
    missing, unexpected = encoder.load_state_dict(model.base_model.state_dict(), strict=False)
    if unexpected or any(not name.startswith("pooler.") for name in missing):
        raise ValueError(f"encoder weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    encoder.config.pooling = checkpoint_pooling(original_dir, encoder.config)  # mean for sentence-transformers
    encoder.save_pretrained(folder)

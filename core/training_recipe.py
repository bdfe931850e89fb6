"""What every LightningModule here trains and checkpoints with: the classifier's and masked-LM
pretraining's one home for the optimizer, the schedule and resumable, adapter-only checkpoints.

AdamW without weight decay on biases and LayerNorm weights (BERT's recipe), a linear warm-up
over ``warmup_ratio`` of the run's steps then linear decay; checkpoints carry the global RNG
states, so a resumed run draws the same dropout masks (and MLM masks) as an uninterrupted one,
and with adapter-only checkpoints hold the trainable tensors alone (LoRA on MiniLM-L6: ~1 MB,
not 90 MB; the module sets ``strict_loading = False`` to load them).
"""

from __future__ import annotations

import random

import lightning as L
import torch
from transformers import get_linear_schedule_with_warmup


def adamw_with_warmup(module: L.LightningModule, lr: float, weight_decay: float, warmup_ratio: float) -> dict:
    """Lightning's ``configure_optimizers`` answer for the parameters of ``module`` that require grad."""
    decay, no_decay = [], []
    for param in module.parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    total = max(1, int(module.trainer.estimated_stepping_batches))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def save_training_state(module: L.LightningModule, checkpoint: dict, adapter_only: bool) -> None:
    """From ``on_save_checkpoint``: the RNG states, and with ``adapter_only`` the trainable tensors alone."""
    checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if adapter_only:
        trainable = {name for name, param in module.named_parameters() if param.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}


def restore_rng(module: L.LightningModule, checkpoint: dict) -> None:
    """From ``on_load_checkpoint``: a resumed fit continues the saved RNG streams (scoring a checkpoint does not)."""
    states = checkpoint.get("rng_states")
    if states and module.trainer.state.fn == "fit":
        torch.set_rng_state(states["torch"])
        random.setstate(states["python"])

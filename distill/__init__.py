"""Distillation: students copied from a teacher's layers or pretrained on their own, the
KD and hidden-state losses (across tokenizers), and the LightningModule that trains them."""

from tweetcls.distill.layer_copy import STRATEGIES, copy_layers, find_block_stack, select_layers

__all__ = ["STRATEGIES", "copy_layers", "find_block_stack", "select_layers"]

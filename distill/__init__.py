"""Layer-copied students from a deeper teacher (distillation losses follow)."""

from distill.layer_copy import STRATEGIES, copy_layers, find_block_stack, select_layers

__all__ = ["STRATEGIES", "copy_layers", "find_block_stack", "select_layers"]

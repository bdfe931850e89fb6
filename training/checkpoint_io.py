"""Checkpoint files written atomically and read without executing pickled code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tweetcls.core.errors import UsageError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file, then rename: a kill mid-write leaves the old file whole."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def load_checkpoint_safely(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} not found") from None
    except Exception as err:  # UnpicklingError for foreign objects, RuntimeError for a torn file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(
            f"refusing checkpoint {path}: it is corrupt or holds objects other than tensors "
            f"and plain data ({first[:160]})"
        ) from None

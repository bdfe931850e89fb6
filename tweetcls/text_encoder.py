"""Texts to padded numpy batches with the model's own fast tokenizer (the ``tokenizers``
library that every Hugging Face fast tokenizer runs on), without transformers.

One code path for every backend: the torch backends wrap the arrays as tensors, the ONNX
ones feed them as they are. It computes what ``tokenizer(texts, truncation=True,
max_length=n, padding=True)`` computes (tests/test_predict.py compares them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


class TextEncoder:
    def __init__(self, backend: Tokenizer, max_length: int, pad_id: int) -> None:
        self.tokenizer = Tokenizer.from_str(backend.to_str())  # a copy: its truncation settings are ours
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.pad_id = pad_id

    @classmethod
    def from_hf(cls, tokenizer, max_length: int) -> "TextEncoder":
        """From a transformers fast tokenizer."""
        return cls(tokenizer.backend_tokenizer, max_length, tokenizer.pad_token_id or 0)

    @classmethod
    def from_folder(cls, folder: str | Path, max_length: int) -> "TextEncoder":
        """From the tokenizer.json (and tokenizer_config.json's pad token) save_pretrained wrote."""
        folder = Path(folder)
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config_file = folder / "tokenizer_config.json"
        pad = json.loads(config_file.read_text()).get("pad_token") if config_file.is_file() else None
        pad = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = backend.token_to_id(pad) if pad else None
        return cls(backend, max_length, pad_id or 0)

    def encode(self, texts: list[str]) -> list:
        return self.tokenizer.encode_batch(texts)

    def pad(self, encodings: list) -> dict[str, np.ndarray]:
        """input_ids, attention_mask and token_type_ids, right-padded to the longest."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

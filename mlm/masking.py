"""Whole-word masking for masked-language-model training, BERT's recipe.

A word is the tokens the tokenizer's pre-tokenizer gave one word id (``##`` pieces stay
with their word). Each word is chosen with probability ``probability`` (15%) and all its
tokens become prediction targets; of the target tokens, 80% are replaced by the mask
token, 10% by a random non-special token and 10% left as they are (so the model cannot
learn that only ``[MASK]`` positions matter). Special tokens and padding are never targets.

transformers' ``DataCollatorForLanguageModeling(whole_word_mask=True)`` turns the random
10% off and cannot pad character offsets, so this is our own, vectorised over the batch.
"""

from __future__ import annotations

import torch

IGNORE = -100  # label of positions that are not predicted (cross-entropy's ignore_index)
NO_WORD = -1  # word id of special tokens and padding


def word_ids_of(encoding, index: int) -> list[int]:
    """The tokenizer's word id of every token of text ``index`` (``NO_WORD`` for special tokens)."""
    return [NO_WORD if w is None else w for w in encoding.word_ids(index)]


def pad(sequences: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in sequences], dtype=torch.long)


class WholeWordMasking:
    """Collate ``input_ids`` + ``word_ids`` features into a padded, masked batch with ``labels``.

    Draws from ``generator`` (default: torch's global RNG, which Lightning seeds and our
    checkpoints save, so a resumed run masks as an uninterrupted one would).
    """

    def __init__(self, tokenizer, probability: float = 0.15, mask_share: float = 0.8, random_share: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        if not 0 < probability < 1:
            raise ValueError(f"masking probability must be in (0, 1), got {probability}")
        if tokenizer.mask_token_id is None:
            raise ValueError("this tokenizer has no mask token; masked-LM training needs one")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.mask_id = tokenizer.mask_token_id
        self.probability, self.mask_share, self.random_share = probability, mask_share, random_share
        special = set(tokenizer.all_special_ids)
        self.ordinary_ids = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
        self.generator = generator

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        input_ids = pad([f["input_ids"] for f in features], self.pad_id)
        word_ids = pad([f["word_ids"] for f in features], NO_WORD)
        input_ids, labels = self.mask(input_ids, word_ids)
        return {"input_ids": input_ids, "attention_mask": pad([[1] * len(f["input_ids"]) for f in features], 0),
                "labels": labels}

    def mask(self, input_ids: torch.Tensor, word_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked input ids, labels): the original id at target positions, ``IGNORE`` elsewhere."""
        rows, width = word_ids.shape
        has_word = word_ids != NO_WORD
        # one draw per (row, word id): a word's tokens share it, so a word is chosen whole
        chosen_words = torch.rand(rows, width + 1, generator=self.generator) < self.probability
        target = chosen_words.gather(1, word_ids.clamp(min=0)) & has_word
        labels = torch.where(target, input_ids, torch.full_like(input_ids, IGNORE))
        action = torch.rand(rows, width, generator=self.generator)
        masked = input_ids.clone()
        masked[target & (action < self.mask_share)] = self.mask_id
        randomised = target & (action >= self.mask_share) & (action < self.mask_share + self.random_share)
        picks = torch.randint(len(self.ordinary_ids), (int(randomised.sum()),), generator=self.generator)
        masked[randomised] = self.ordinary_ids[picks]
        return masked, labels

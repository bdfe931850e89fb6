"""mlm/ against BERT's recipe as its docstring states it: words chosen whole at the given rate,
80% [MASK] / 10% random ordinary token / 10% kept, specials and padding never targets; a
held-out slice drawn and masked the same way in every run; its loss weighted by targets."""

from __future__ import annotations

import pytest
import torch

from tweetcls.mlm.data import MaskedLMDataModule
from tweetcls.mlm.masking import IGNORE, NO_WORD, WholeWordMasking
from tweetcls.mlm.module import MaskedLMModule


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from tweetcls.core.build import load_tokenizer

    return load_tokenizer(tiny_model_dir)


def _batch(rows: int = 400, words: int = 12, pieces: int = 3, seed: int = 0):
    """Rows of [CLS] w0 w0 w0 w1 ... [SEP] [PAD]: every word ``pieces`` tokens, the last rows padded."""
    g = torch.Generator().manual_seed(seed)
    width = words * pieces + 2 + 3
    word_ids = torch.full((rows, width), NO_WORD)
    word_ids[:, 1:1 + words * pieces] = torch.arange(words).repeat_interleave(pieces)
    input_ids = torch.randint(10, 40, (rows, width), generator=g)
    input_ids[:, 0], input_ids[:, 1 + words * pieces], input_ids[:, 2 + words * pieces:] = 2, 3, 0
    return input_ids, word_ids


@pytest.mark.parametrize("probability", [0.3, 0.6])
def test_whole_words_are_chosen_at_the_given_rate_and_specials_never(tokenizer, probability):
    input_ids, word_ids = _batch()
    masking = WholeWordMasking(tokenizer, probability, generator=torch.Generator().manual_seed(1))
    masked, labels = masking.mask(input_ids, word_ids)
    target = labels != IGNORE
    assert not target[word_ids == NO_WORD].any()
    per_word = target[:, 1:37].reshape(len(target), 12, 3)
    assert (per_word.all(-1) | ~per_word.any(-1)).all()  # a word is a target whole or not at all
    assert per_word[..., 0].float().mean() == pytest.approx(probability, abs=0.03)
    assert torch.equal(labels[target], input_ids[target])


def test_targets_are_eighty_percent_mask_ten_random_ordinary_tokens_ten_kept(tokenizer):
    input_ids, word_ids = _batch(rows=1500)
    masking = WholeWordMasking(tokenizer, 0.5, generator=torch.Generator().manual_seed(2))
    masked, labels = masking.mask(input_ids, word_ids)
    target = labels != IGNORE
    got, original = masked[target], input_ids[target]
    is_mask = got == tokenizer.mask_token_id
    kept = got == original
    randomised = ~is_mask & ~kept
    n = len(got)
    assert is_mask.sum() / n == pytest.approx(0.8, abs=0.02)
    assert randomised.sum() / n == pytest.approx(0.1 * (1 - 1 / len(masking.ordinary_ids)), abs=0.02)
    assert kept.sum() / n == pytest.approx(0.1, abs=0.02)
    assert not set(got[randomised].tolist()) & set(tokenizer.all_special_ids)
    assert torch.equal(masked[~target], input_ids[~target])


TEXTS = [f"source{s} text {i} the river and the garden" for s in range(3) for i in range(40)]


def test_the_datamodule_masks_at_its_probability_and_holds_out_a_seeded_spread_slice(tokenizer):
    modules = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        dm = MaskedLMDataModule(TEXTS, tokenizer, heldout=20, mlm_probability=0.45)
        dm.setup()
        modules.append(dm)
    first, second = modules
    assert first.masking.probability == 0.45
    assert first.texts["validation"] == second.texts["validation"]
    assert first.texts["validation"] != TEXTS[:20]  # a random slice, not the first source's texts
    assert len({t.split()[0] for t in first.texts["validation"]}) == 3
    assert first.encoded["validation"]["labels"] == second.encoded["validation"]["labels"]  # masked the same


def test_the_heldout_loss_is_weighted_by_each_batchs_targets(monkeypatch):
    module = MaskedLMModule(torch.nn.Linear(2, 2))
    answers = iter([(torch.tensor(1.0), 1), (torch.tensor(3.0), 3)])
    monkeypatch.setattr(module, "masked_lm_loss", lambda batch: next(answers))
    module.on_validation_epoch_start()
    module.validation_step({}, 0)
    module.validation_step({}, 1)
    total, count = module._heldout
    assert total / count == pytest.approx((1.0 * 1 + 3.0 * 3) / 4)


def test_the_head_warmup_freezes_the_encoder_for_exactly_n_steps(tiny_model_dir, monkeypatch):
    from tweetcls.mlm.encoder import masked_lm_for

    model, _ = masked_lm_for(tiny_model_dir)
    module = MaskedLMModule(model, head_warmup_steps=2)
    for step, frozen in ((1, True), (2, False)):
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        monkeypatch.setattr(MaskedLMModule, "global_step", property(lambda self, s=step: s))
        module.on_before_optimizer_step(None)
        assert all((p.grad is None) == frozen for p in model.base_model.parameters()), step

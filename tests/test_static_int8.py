"""Static (calibrated) int8 through ONNX Runtime: a text's answer does not depend on what it is
batched with, the calibration is recorded, and it is a backend, an export format and a ledger row."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from tweetcls.commands import evaluate
from tweetcls.commands import export
from conftest import make_texts, train_tiny_run
from tweetcls import Predictor
from tweetcls.core.errors import UsageError

TWEET = "so angry that the bus never came this morning, again"
MATES = [[TWEET, "short"],
         ["a much longer text that pads every other row of this batch out to many more tokens than the tweet", TWEET,
          "what a lovely sunny day"],
         [text for text, _ in make_texts(7, seed=11)] + [TWEET]]


@pytest.fixture(scope="module")
def run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("static")
    return train_tiny_run(tiny_model_dir, tiny_csv, out, "--lora-targets", "query,value,dense", "--max-epochs", "2")


def row_of_tweet(predictor: Predictor, batch: list[str]) -> torch.Tensor:
    predictor.batch_size = len(batch)  # one batch: the tweet is padded and quantized with its mates
    return torch.from_numpy(predictor.logits(batch)[batch.index(TWEET)])


def test_a_tweet_gets_the_same_logits_alone_and_inside_three_different_batches(run):
    static = Predictor.from_run(run, backend="onnx-int8-static")
    alone = torch.from_numpy(static.logits([TWEET])[0])
    for batch in MATES:
        assert torch.equal(row_of_tweet(static, batch), alone), batch
    # dynamic int8 measures each batch's ranges: its answer moves with the mates (what static removes)
    dynamic = Predictor.from_run(run, backend="onnx-int8")
    assert any(not torch.equal(row_of_tweet(dynamic, batch), torch.from_numpy(dynamic.logits([TWEET])[0])) for batch in MATES)


def test_static_int8_is_calibrated_qdq_close_to_fp32_and_records_its_calibration(run):
    static = Predictor.from_run(run, backend="onnx-int8-static")
    fp32 = Predictor.from_run(run, backend="onnx")
    texts = [text for text, _ in make_texts(40, seed=2)]
    q, f = torch.from_numpy(static.logits(texts)), torch.from_numpy(fp32.logits(texts))
    assert not torch.equal(q, f) and (q - f).abs().mean() < 0.1 * f.std()
    graph = onnx.load(str(run / "onnx" / "model-int8-static.onnx"))
    ops = {node.op_type for node in graph.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and "DynamicQuantizeLinear" not in ops
    meta = json.loads((run / "onnx" / "tweetcls.json").read_text())
    assert 0 < meta["static_int8"]["calibration_texts"] <= 256 and meta["static_int8"]["kept_fp32"]


def test_export_format_and_refusals(run, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert export.main([str(run), "--format", "onnx-int8-static", "--out", str(out)]) == 0
    assert (out / "model-int8-static.onnx").is_file()
    assert Predictor.from_run(out, backend="onnx-int8-static").backend == "onnx-int8-static"
    assert export.main([str(run / "model"), "--format", "onnx-int8-static", "--out", str(tmp_path / "x")]) == 2
    assert "calibrates on a run's training texts" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written
    assert export.main([str(run), "--format", "onnx", "--out", str(tmp_path / "fp32")]) == 0
    with pytest.raises(UsageError, match="has no model-int8-static.onnx"):
        Predictor.from_run(tmp_path / "fp32", backend="onnx-int8-static")


def test_static_int8_is_a_row_of_the_compression_ledger(run, tmp_path):
    out = tmp_path / "ledger"
    assert evaluate.main([str(run), "--compress", "none,onnx-int8-static", "--latency-iters", "2",
                          "--output", str(out) + ".json"]) == 0
    rows = {r["variant"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert set(rows) == {"none", "onnx-int8-static"}
    assert rows["onnx-int8-static"]["latency_p50_ms"] > 0 and abs(rows["onnx-int8-static"]["delta"]) <= 0.2

"""The HTTP API: every endpoint, every limit and bad input as a 4xx naming the problem, and
concurrent requests batched together."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import make_texts, train_tiny_run
from tweetcls import Predictor
from tweetcls.model_card import model_card
from tweetcls.service import Limits, create_app

TEXTS = [text for text, _ in make_texts(10, seed=7)]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve")
    return train_tiny_run(tiny_model_dir, tiny_csv, out)


@pytest.fixture(scope="module")
def predictor(run_dir) -> Predictor:
    return Predictor.from_run(run_dir)


@pytest.fixture()
def client(predictor):
    limits = Limits(max_texts=8, max_chars=100, max_body_bytes=4000, max_file_texts=50)
    with TestClient(create_app(predictor, model_card(predictor), limits)) as client:
        yield client


def test_predict_answers_as_the_predictor_does(client, predictor):
    response = client.post("/predict", json={"texts": TEXTS[:5] + [""]})
    assert response.status_code == 200
    got = response.json()["predictions"]
    expected = predictor.predict(TEXTS[:5] + [""])
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert got[0]["probabilities"] == pytest.approx(expected[0]["probabilities"])
    assert got[5]["empty"] and got[5]["probability"] is None and not got[0]["empty"]


def test_model_card_health_page_and_docs(client, run_dir):
    card = client.get("/model").json()
    results = json.loads((run_dir / "results.json").read_text())
    assert card["label_names"] == results["label_names"] and card["method"] == "lora"
    assert card["test"]["task_metric"] == pytest.approx(results["test"]["task_metric"])
    assert card["params_trainable"] == results["params_trainable"] and card["backend"] == "torch"
    assert card["size_mb"] > 0 and card["trained_utc"]
    assert client.get("/health").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and "<textarea" in page.text and "http" not in page.text.split("<body>")[1]
    assert client.get("/static/app.js").status_code == 200
    assert "/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("send, status, words", [
    (lambda c: c.post("/predict", json={"texts": ["x"] * 9}), 422, "at most 8"),
    (lambda c: c.post("/predict", json={"texts": ["x" * 101]}), 422, "at most 100 characters"),
    (lambda c: c.post("/predict", json={"texts": []}), 422, "at least 1"),
    (lambda c: c.post("/predict", json={"texts": ["fine", 3]}), 422, "texts.1: Input should be a valid string"),
    (lambda c: c.post("/predict", json={"text": "hi"}), 422, "texts: Field required"),
    (lambda c: c.post("/predict", json=["hi"]), 422, "valid dictionary"),
    (lambda c: c.post("/predict", content=b'{"texts": ["a",', headers={"Content-Type": "application/json"}), 422,
     "not valid JSON"),
    (lambda c: c.post("/predict", content=b"texts=a", headers={"Content-Type": "text/plain"}), 415,
     "Content-Type: application/json"),
    (lambda c: c.post("/predict", content=bytes(range(256)) * 4, headers={"Content-Type": "application/json"}), 422,
     "not valid JSON"),
    (lambda c: c.post("/predict", json={"texts": ["y" * 90] * 50}), 413, "over the limit of 4000 bytes"),
    (lambda c: c.post("/predict/file", files={"file": ("a.pdf", b"%PDF\xe2\x28\xa1", "application/pdf")}), 400,
     "not UTF-8"),
    (lambda c: c.post("/predict/file", files={"file": ("a.csv", b"tweet\nhi\n", "text/csv")}), 400,
     "no 'text' column"),
    (lambda c: c.post("/predict/file", files={"file": ("a.txt", "caf\u00e9".encode("latin-1"), "text/plain")}), 400,
     "not UTF-8"),
    (lambda c: c.post("/predict/file", files={"file": ("a.txt", b"hi\n" * 60, "text/plain")}), 413,
     "limit is 50"),
])
def test_bad_requests_are_4xx_naming_the_problem(client, send, status, words):
    response = send(client)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    # and the service is unharmed: the next request is answered
    assert client.post("/predict", json={"texts": ["still fine"]}).status_code == 200


def test_file_upload_returns_the_predictions_as_csv(client, predictor):
    upload = "id,text\n" + "\n".join(f"r{i},{t}" for i, t in enumerate(TEXTS[:4])) + "\n"
    response = client.post("/predict/file", files={"file": ("tweets.csv", upload.encode(), "text/csv")})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="tweets-predictions.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    assert [r["label"] for r in rows] == [p["label"] for p in predictor.predict(TEXTS[:4])]


def test_concurrent_requests_are_batched_together(predictor):
    app = create_app(predictor, {}, Limits(batch_window_ms=50))
    calls = []

    def counting_predict(texts):
        calls.append(len(texts))
        return predictor.predict(texts)

    app.state.batcher.predict = counting_predict

    async def many():
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(*[http.post("/predict", json={"texts": [t]}) for t in TEXTS[:8]])

    responses = asyncio.run(many())
    assert all(r.status_code == 200 for r in responses)
    assert sum(calls) == 8 and len(calls) < 8  # fewer predictor calls than requests
    expected = predictor.predict(TEXTS[:8])
    assert [r.json()["predictions"][0]["label"] for r in responses] == [e["label"] for e in expected]

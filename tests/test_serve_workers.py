"""serve.py --workers N: N processes on one port, each answering exactly what the model answers
one text at a time, under concurrent clients."""

from __future__ import annotations

import random
import subprocess
import threading
from pathlib import Path

import pytest

from benchmarks.live_server import live_server, post_json
from conftest import make_texts, train_tiny_run
from tweetcls import Predictor


@pytest.fixture(scope="module")
def run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("workers"), "--max-epochs", "1")


def test_two_workers_answer_concurrent_clients_as_the_model_does_one_text_at_a_time(run):
    texts = [text for text, _ in make_texts(30, seed=9)]
    rng = random.Random(0)
    plans = [[rng.sample(texts, rng.randint(1, 4)) for _ in range(6)] for _ in range(8)]
    answers: list[tuple[list[str], list[dict]]] = []
    errors: list[str] = []

    def client(url: str, plan: list[list[str]]) -> None:
        for batch in plan:
            try:
                answers.append((batch, post_json(url + "/predict", {"texts": batch})["predictions"]))
            except Exception as err:  # noqa: BLE001 - the test reports every failure
                errors.append(repr(err))

    # static int8: a text's answer does not depend on its batch mates, so the answers must be equal, not close
    with live_server(run, "--backend", "onnx-int8-static", "--workers", "2", "--batch-window-ms", "20") as url:
        workers = subprocess.run(["pgrep", "-P", str(url.pid)], capture_output=True, text=True).stdout.split()
        threads = [threading.Thread(target=client, args=(url, plan)) for plan in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(workers) >= 2, workers  # uvicorn's N workers (and nothing else) are the server's children
    assert errors == [] and len(answers) == 48
    alone = Predictor.from_run(run, backend="onnx-int8-static")
    expected = {text: alone.predict([text])[0] for text in texts}
    for batch, predictions in answers:
        for text, got in zip(batch, predictions, strict=True):
            want = expected[text]
            assert got["label"] == want["label"] and got["probabilities"] == want["probabilities"], text


def test_threads_per_worker_divide_the_cores():
    from tweetcls.commands import serve

    args = serve.parse_args(["x", "--workers", "2"])
    cores = len(serve.os.sched_getaffinity(0))
    assert serve.threads_per_worker(args) == max(1, cores // 2)
    assert serve.threads_per_worker(serve.parse_args(["x", "--workers", "2", "--threads", "3"])) == 3

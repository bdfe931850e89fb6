"""serve.py holds no connection for a client that sends nothing or too slowly, caps open connections, and
logs an overload in single lines (issue 46: 20,000 idle or half-sent connections starved the server)."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.live_server import live_server
from conftest import train_tiny_run

TIMEOUT = 2  # --request-timeout for these tests, seconds


@pytest.fixture(scope="module")
def run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("connections"))


@pytest.fixture(scope="module")
def server(run):
    with live_server(run, "--request-timeout", str(TIMEOUT), "--keep-alive", "1",
                     "--max-connections", "8") as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT + 20)
    return sock


def until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start, got = time.monotonic(), b""
    while chunk := sock.recv(4096):
        got += chunk
    return got, time.monotonic() - start


@pytest.mark.parametrize("send", [b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty",
                                  b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 100\r\n\r\n{\"texts\": "])
def test_a_connection_that_sends_nothing_half_a_head_or_half_a_body_is_closed(server, send):
    with connect(server) as sock:
        sock.sendall(send)
        got, seconds = until_closed(sock)  # socket.timeout (a failure) if the server holds it
    assert seconds < TIMEOUT + 15
    assert got.startswith(b"HTTP/1.1 408") if send else got == b""


def test_a_body_sent_a_byte_at_a_time_does_not_keep_the_connection(server):
    with connect(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        start = time.monotonic()
        try:
            while time.monotonic() - start < TIMEOUT + 15:
                sock.sendall(b" ")
                time.sleep(0.3)
            pytest.fail("the server kept a connection that trickles its body")
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_an_idle_connection_after_an_answer_is_closed_and_answers_go_on(server):
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got, seconds = until_closed(sock)
    assert got.startswith(b"HTTP/1.1 200") and seconds < 1 + 15
    assert urllib.request.urlopen(server + "/health", timeout=30).status == 200


def test_past_max_connections_new_ones_get_503_and_the_log_says_so_in_single_lines(run):
    """Also: the start prints what serve.py says and nothing from a library (issue 49: ONNX Runtime's
    quantizer warned at the first start on onnx-int8, which makes the export)."""
    assert not (run / "onnx").exists()
    with live_server(run, "--backend", "onnx-int8", "--request-timeout", str(TIMEOUT), "--max-connections", "4") as url:
        idle = [connect(url) for _ in range(4)]
        time.sleep(0.5)
        refused = []
        for _ in range(30):
            with connect(url) as sock:
                refused.append(until_closed(sock)[0])
        for sock in idle:
            sock.close()
        deadline = time.monotonic() + 30
        while True:  # once the idle ones are gone, the server answers again
            try:
                assert urllib.request.urlopen(url + "/health", timeout=30).status == 200
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
    assert all(got.startswith(b"HTTP/1.1 503") and b"too many connections" in got for got in refused)
    log = url.process.stderr.read().splitlines()
    overload = [line for line in log if "open connections" in line]
    assert len(overload) == 1, log  # 30 refusals in a second: one line, not 30
    assert [line.split(" x ")[0] for line in log if line not in overload] == [
        f"serving {run} (onnx-int8) at {url}/ with 1 worker",
        "serve.py: onnx-int8 answers depend on batch mates, so each text runs alone (slower); onnx-int8-static "
        "batches and answers every text as alone"]

"""serve.py started for a test or a benchmark: a real uvicorn on a free loopback port, stopped afterwards."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The server's base URL; ``pid``: its process (with --workers, the parent of the workers); ``process``:
    its Popen (``process.stderr`` is the server's log, to read once it has stopped)."""

    pid: int
    process: subprocess.Popen


@contextlib.contextmanager
def live_server(target: Path, *flags: str, seconds: float = 120):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parents[1] / "serve.py"), str(target), "--port", str(port), *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid, url.process = process.pid, process
    try:
        deadline = time.monotonic() + seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve.py exited: {process.stderr.read()[-2000:]}")
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"serve.py did not answer at {url} in {seconds} s") from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=60).read())

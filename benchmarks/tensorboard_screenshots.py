"""Screenshots of TensorBoard as a reviewer opens it, 1280 x 900, default settings: the first
screen (TIME SERIES), and TEXT, HPARAMS, SCALARS, CUSTOM SCALARS, IMAGES.

    python -m benchmarks.tensorboard_screenshots runs/ --out docs/tensorboard

Starts TensorBoard on the runs folder (127.0.0.1, a free port), takes a headless-Chromium
screenshot of each tab, then stops TensorBoard. Needs Debian's ``chromium`` package
(``apt-get install chromium``). Use it to check what a change to the logging looks like on
screen, and to refresh README's pictures.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TABS = {"first_screen": "", "text": "text", "hparams": "hparams", "scalars": "scalars",
        "custom_scalars": "custom_scalars", "images": "images"}  # "": no hash, the tab TensorBoard opens on
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"TensorBoard did not answer at {url} within {seconds:.0f} s")


def screenshot(chromium: str, url: str, path: Path, size: str, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url],
                       check=True, capture_output=True, timeout=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logdir", type=Path, help="a folder of runs (train.py's --output-dir)")
    p.add_argument("--out", type=Path, default=Path("tensorboard-screenshots"))
    p.add_argument("--tabs", default=",".join(TABS), help=f"comma-separated, of {', '.join(TABS)}")
    p.add_argument("--size", default="1280,900", help="window width,height in pixels")
    p.add_argument("--wait-ms", type=int, default=15000, help="page time to let TensorBoard draw")
    args = p.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("tensorboard_screenshots: error: no chromium found; apt-get install chromium", file=sys.stderr)
        return 2
    if not args.logdir.is_dir():
        print(f"tensorboard_screenshots: error: {args.logdir} is not a folder of runs", file=sys.stderr)
        return 2
    unknown = [name for name in args.tabs.split(",") if name not in TABS]
    if unknown:
        print(f"tensorboard_screenshots: error: --tabs {','.join(unknown)} unknown; choose from {', '.join(TABS)}",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(args.logdir),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/data/logdir")
        for name in args.tabs.split(","):
            path = args.out / f"{name}.png"
            hash_part = f"#{TABS[name]}" if TABS[name] else ""
            screenshot(chromium, f"http://127.0.0.1:{port}/{hash_part}", path, args.size, args.wait_ms)
            print(path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

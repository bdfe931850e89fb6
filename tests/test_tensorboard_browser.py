"""TensorBoard as a reviewer opens it (``tensorboard --logdir``, default settings, 1280 x 900),
in a real browser (headless Chromium via Selenium) on two tiny real runs (LoRA and full
fine-tuning, 2 steps each) and their ``evaluate.py --compare --latency`` table: what the page
shows, read from the page, against each run's results.json."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tweetcls.commands import evaluate
from tweetcls.commands import train
from browser import start_chromium, wait_until

WIDTH, HEIGHT = 1280, 900
DEEP = """
const all = (root, sel, out = []) => {
  root.querySelectorAll(sel).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) all(e.shadowRoot, sel, out); });
  return out;
};
"""


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tiny_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("tensorboard")
    common = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(out),
              "--max-train-samples", "32", "--batch-size", "16", "--max-epochs", "1", "--no-progress-bar"]
    for method in ("lora", "full"):
        assert train.main([*common, "--method", method, "--run-name", method]) == 0
    assert evaluate.main(["--compare", str(out), "--latency"]) == 0
    return out


@pytest.fixture(scope="module")
def tensorboard(runs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(runs), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: {"lora", "full", "_comparison"} <= set(fetch_json(url + "/data/runs") or []), 60)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def fetch_json(url: str):
    try:
        return json.loads(urllib.request.urlopen(url, timeout=2).read())
    except OSError:
        return None


@pytest.fixture()
def browser(tmp_path):
    driver = start_chromium(tmp_path / "profile", [f"--window-size={WIDTH},{HEIGHT}"])
    # the first screen is the page's 1280 x 900, not the window's
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def results(runs, name: str) -> dict:
    return json.loads((runs / name / "results.json").read_text())


IMAGE_CARDS = """
return Array.from(document.querySelectorAll('card-view')).filter(c => c.querySelector('image-card img')).map(c => {
  const img = c.querySelector('image-card img'), r = img.getBoundingClientRect();
  return {title: c.querySelector('.heading, .title, tb-truncated-path')?.innerText || c.innerText.split('\\n').slice(0, 2).join(''),
          run: c.querySelector('card-run-name')?.innerText.trim(), src: img.src, complete: img.complete,
          natural: img.naturalWidth, shown: r.width, top: r.top, bottom: r.bottom, left: r.left, right: r.right};
});"""


def page_png(browser, src: str) -> np.ndarray:
    from PIL import Image

    data = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {
          let s = ''; new Uint8Array(b).forEach(x => s += String.fromCharCode(x)); done(btoa(s)); });""", src)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_the_first_screen_compares_both_runs_as_results_json_has_them(runs, tensorboard, browser, tmp_path):
    from torch.utils.tensorboard._utils import figure_to_image

    from tweetcls.review.tensorboard import run_card_figure, run_card_rows

    browser.get(tensorboard + "/")  # no hash: the dashboard TensorBoard opens on by itself
    cards = wait_until(lambda: [c for c in browser.execute_script(IMAGE_CARDS)
                                if "compare" in c["title"] and c["complete"] and c["natural"]])
    browser.save_screenshot(str(tmp_path / "first_screen.png"))
    assert sorted(c["run"] for c in cards) == ["full", "lora"]
    for card in cards:
        # on the first screen, whole, and at its own size (a card scaled to a thumbnail is not readable)
        assert 0 <= card["top"] and card["bottom"] <= HEIGHT and 0 <= card["left"] and card["right"] <= WIDTH, card
        assert abs(card["shown"] - card["natural"]) <= 0.5, card  # 1:1: a card scaled up by 6% was blurred
        run = results(runs, card["run"])
        shown = page_png(browser, card["src"])
        expected = figure_to_image(run_card_figure(run)).transpose(1, 2, 0)
        assert shown.shape == expected.shape and (shown == expected).all()  # the card of exactly these numbers
        rows = dict(run_card_rows(run))
        assert rows["trainable"].startswith(f"{run['params_trainable']:,} (")
        assert rows["train time"].startswith(f"{run['fit_seconds']:.1f} s")
        assert rows["test"] == f"{run['test']['task_metric']:.4f} {run['task_metric']}"
        assert rows["data"].endswith(", first 32")


DATA_TABLE = """
const card = Array.from(document.querySelectorAll('card-view'))
  .find(c => c.innerText.split('\\n').slice(0, 2).join('').trim() === arguments[0]);
if (!card) return null;
card.scrollIntoView();
const rows = Array.from(card.querySelectorAll('tb-data-table-content-row')).map(r =>
  Array.from(r.querySelectorAll('tb-data-table-content-cell')).map(c => c.innerText.trim()));
return rows.length ? rows : null;"""


def card_table(browser, tag: str) -> dict[str, dict[str, str]]:
    """A TIME SERIES scalar card's data table, as run -> {column: text}, found with the tag filter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "metrics-tag-filter input"))[0]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(f"^{tag}$")
    rows = wait_until(lambda: browser.execute_script(DATA_TABLE, tag))
    header = ["Run", "Smoothed", "Value", "Step", "Relative"]
    offset = len(rows[0]) - len(header)  # the colour dot's cell, where there is one
    return {cells[offset]: dict(zip(header, cells[offset:])) for cells in rows}


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_final_numbers_are_drawn_as_they_are(runs, tensorboard, browser):
    """The hp cards' data tables (what a reviewer hovers over): value = results.json, smoothing changes
    nothing, and no val point after the last training step (the re-check of the best checkpoint)."""
    browser.get(tensorboard + "/#timeseries")
    expected = {"hp/params_trainable": "params_trainable", "hp/fit_seconds": "fit_seconds",
                "params/trainable": "params_trainable", "params/total": "params_total",
                "time/fit_seconds": "fit_seconds", "time/train_samples_per_sec": "train_samples_per_sec"}
    for tag, key in expected.items():
        table = card_table(browser, tag)
        assert set(table) == {"lora", "full"}
        for run, row in table.items():
            assert number(row["Value"]) == pytest.approx(results(runs, run)[key], rel=1e-4, abs=1e-4), (tag, row)
            assert row["Smoothed"] == row["Value"], (tag, row)  # no ramp
            # a level to the last step (params/* and time/* were one point, a dot at step 0 or the end)
            assert int(row["Step"]) == results(runs, run)["steps"], (tag, row)
    for run, row in card_table(browser, "val/task_metric").items():
        assert int(row["Step"]) < results(runs, run)["steps"], row  # validation's own step, not one after


CELLS = DEEP + """
const canvas = document.createElement('canvas').getContext('2d');
const tables = all(document, 'table');
const cramped = [];
for (const table of tables) {
  for (const cell of table.querySelectorAll('td, th')) {
    const style = getComputedStyle(cell);
    canvas.font = style.font;
    const room = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    for (const word of cell.innerText.split(/\\s+/).filter(Boolean)) {
      if (canvas.measureText(word).width > room + 0.5) cramped.push([word, Math.round(room)]);
    }
  }
}
return {tables: tables.map(t => ({text: t.innerText, right: t.getBoundingClientRect().right,
                                  width: t.getBoundingClientRect().width})), cramped: cramped};"""


def test_the_comparison_tables_are_readable(runs, tensorboard, browser):
    """TEXT: the cross-run table of --compare and each run's own row: no cell narrower than its longest
    word (18 columns once squeezed every cell to a letter a line), nothing past the right edge."""
    browser.get(tensorboard + "/#text")
    found = wait_until(lambda: (f := browser.execute_script(CELLS)) and len(f["tables"]) >= 3 and f)
    assert found["cramped"] == []
    assert all(0 < t["right"] <= WIDTH for t in found["tables"])
    comparison = next(t["text"] for t in found["tables"] if "lora" in t["text"] and "full" in t["text"])
    for name in ("lora", "full"):
        assert f"{results(runs, name)['params_trainable']:,}" in comparison


HPARAMS_TABLE = DEEP + """
const grid = all(document, 'vaadin-grid')[0];
if (!grid) return null;
const table = grid.shadowRoot.querySelector('#table');
const cells = all(document, '.table-cell').filter(c => c.getBoundingClientRect().width > 0).map(c => {
  const r = c.getBoundingClientRect();
  return {text: c.innerText.trim(), top: Math.round(r.top), left: r.left, right: r.right, header: c.classList.contains('table-header'),
          cut: c.scrollWidth > c.clientWidth + 1};
});
return {scroll: table.scrollWidth, width: table.clientWidth, cells: cells};"""


def test_hparams_reads_at_1280_without_scrolling_sideways(runs, tensorboard, browser):
    """HPARAMS' table (2.21: at least 160 px a column, cells cut with '...') once had 10 columns at
    1280 px: cells cut and the metrics off to the right. Every column now fits, nothing is cut, and
    each row says what results.json says."""
    browser.get(tensorboard + "/#hparams")
    found = wait_until(lambda: (f := browser.execute_script(HPARAMS_TABLE)) and
                       sum(not c["header"] and c["text"] in ("lora", "full") for c in f["cells"]) >= 2 and f)
    assert found["scroll"] <= found["width"], found  # no sideways scrolling
    assert [c["text"] for c in found["cells"] if c["cut"]] == []  # no cell ends in '...'
    assert all(c["right"] <= WIDTH for c in found["cells"])
    headers = [c["text"] for c in sorted(found["cells"], key=lambda c: c["left"]) if c["header"]]
    assert headers == ["Trial ID", "Show Metrics", "run", "lr, epochs, seed", "data, precision", "test metric"]
    rows = {}
    for cell in sorted((c for c in found["cells"] if not c["header"]), key=lambda c: c["left"]):
        rows.setdefault(cell["top"], []).append(cell["text"])
    rows = {cells[0]: cells[1:] for cells in rows.values()}
    for name in ("lora", "full"):
        run = results(runs, name)
        shown = [text for text in rows[name] if text]  # the Show Metrics cell is a checkbox
        assert shown[:3] == [f"{name} {Path(run['model']).name}" + (" r=8" if name == "lora" else ""),
                             f"{run['config']['lr']:.0e}".replace("e-0", "e-") + ", 1 ep, seed 0",
                             "tiny.csv[:32], " + ("bf16" if "bf16" in run["precision"] else "fp32")]
        assert float(shown[3]) == pytest.approx(run["test"]["task_metric"], abs=5e-6)  # 5 significant digits


def image_key(src: str) -> str:
    """IMAGES' image URL names its run and tag in base64: '["", "_comparison", "comparison/3_rows", 0, 2]'."""
    from urllib.parse import parse_qs, urlparse

    key = parse_qs(urlparse(src).query).get("blob_key", [""])[0]
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode(errors="replace")


def test_the_comparison_images_are_shown_at_their_own_size(runs, tensorboard, browser):
    """The comparison figure (1500 x 500) was a 319 x 106 thumbnail in TIME SERIES and 350 x 117 in
    IMAGES: now card-sized images shown 1:1 in TIME SERIES and at most 10% larger in IMAGES."""
    browser.get(tensorboard + "/")

    def comparison_cards():  # TIME SERIES loads a card's image once it scrolls into view
        browser.execute_script("""
            const card = Array.from(document.querySelectorAll('card-view')).filter(c => c.innerText.includes('_comparison')).pop();
            Array.from(document.querySelectorAll('*')).filter(e => card && e.contains(card) && e.scrollHeight > e.clientHeight + 1
                && /auto|scroll/.test(getComputedStyle(e).overflowY)).forEach(e => e.scrollTop = e.scrollHeight);""")
        found = [c for c in browser.execute_script(IMAGE_CARDS) if c["run"] == "_comparison" and c["complete"]
                 and c["natural"]]
        return len(found) == 3 and found

    shown = wait_until(comparison_cards)
    for image in shown:
        assert image["natural"] >= 300 and abs(image["shown"] - image["natural"]) <= 0.5, image
        assert image["right"] <= WIDTH
    browser.get(tensorboard + "/#images")
    legacy = wait_until(lambda: len(found := [i for i in browser.execute_script(DEEP + """
        return all(document, 'img').filter(i => i.src.includes('individualImage')).map(i => (
          {src: i.src, natural: i.naturalWidth, shown: i.getBoundingClientRect().width}));""")
                                              if "_comparison" in image_key(i["src"]) and i["natural"]]) == 3 and found)
    assert all(300 <= i["natural"] <= i["shown"] <= 1.1 * i["natural"] for i in legacy), legacy

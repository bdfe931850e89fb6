"""The page in a real browser (headless Chromium via Selenium) against serve.py on loopback,
and a property-based fuzz of the API from its own OpenAPI spec (schemathesis)."""

from __future__ import annotations

import csv

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from conftest import make_texts, train_tiny_run
from benchmarks.live_server import live_server, post_json
from browser import start_chromium, wait_until

# no network: every other host is unknown
OFFLINE = ["--window-size=1200,900", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tiny_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    with live_server(train_tiny_run(tiny_model_dir, tiny_csv, out), "--max-texts", "16") as url:
        yield url


@pytest.fixture()
def browser(tmp_path):
    driver = start_chromium(tmp_path / "profile", OFFLINE, {"download.default_directory": str(tmp_path / "downloads"),
                                                           "download.prompt_for_download": False})
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser, server: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait_until(lambda: "loading" not in browser.find_element(By.ID, "subtitle").text)


def classify(browser, lines: list[str]) -> None:
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.ID, "texts")
    box.clear()
    box.send_keys("\n".join(lines))
    browser.find_element(By.ID, "classify").click()


def test_the_page_shows_the_apis_labels_and_returns_a_csv(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    texts = [text for text, _ in make_texts(2, seed=11)]
    open_page(browser, server)
    assert browser.find_element(By.CSS_SELECTOR, "label[for=texts]").text  # inputs are labelled
    # the limits in words before any request (issue 49), the server's --max-texts 16 among them
    assert browser.find_element(By.ID, "limits").text.split("\n") == [
        "At most 16 texts per request.",
        "A text longer than 2,000 characters is refused; the model reads the first 128 tokens."]
    classify(browser, texts)
    rows = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#results tbody tr"))
    shown = [row.find_element(By.CSS_SELECTOR, "td.label").text for row in rows]
    answer = post_json(server + "/predict", {"texts": texts})["predictions"]
    assert shown == [p["label"] for p in answer]
    assert len(rows[0].find_elements(By.CSS_SELECTOR, ".bar")) == 3  # a probability bar per label
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000

    # no download link until there is a file to download (issue 49: it showed as plain text from the start)
    assert not browser.find_elements(By.XPATH, "//*[contains(text(), 'Download')]")
    upload = tmp_path / "données✓.csv"  # a name outside Latin-1 was an HTTP 500 (issue 46)
    upload.write_text("id,text\n" + "\n".join(f"r{i},{t}" for i, t in enumerate(texts)) + "\n")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    browser.find_element(By.ID, "upload").click()
    downloaded = wait_until(lambda: [p for p in (tmp_path / "downloads").glob("*.csv")] if
                            (tmp_path / "downloads").is_dir() else [])
    assert [p.name for p in downloaded] == ["données✓-predictions.csv"]
    rows = list(csv.DictReader(downloaded[0].open()))
    assert [r["id"] for r in rows] == ["r0", "r1"] and [r["label"] for r in rows] == [p["label"] for p in answer]
    link = browser.find_element(By.ID, "download")
    assert link.is_displayed() and link.get_attribute("href").startswith("blob:")
    assert link.get_attribute("download") == "données✓-predictions.csv"

    # a failed upload takes the earlier file's link away: the page never offers what this request did not make
    (tmp_path / "notes.csv").write_text("tweet\nhello\n")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.csv"))
    browser.find_element(By.ID, "upload").click()
    assert "no 'text' column" in wait_until(lambda: browser.find_element(By.ID, "error").text)
    assert not browser.find_elements(By.ID, "download")


def test_the_page_shows_an_api_error_in_words_in_place_of_the_old_result(server, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    classify(browser, ["a first text"])
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#results tbody tr"))
    classify(browser, [f"text {i}" for i in range(20)])  # over --max-texts 16
    error = wait_until(lambda: browser.find_element(By.ID, "error").text)
    assert error == "at most 16 texts per request; this one has 20: send them in several requests, or as a file"
    assert not browser.find_element(By.ID, "results").is_displayed()  # the old result went with the new request
    assert not browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    classify(browser, ["fine", "y" * 2001])
    wait_until(lambda: "2,001" in browser.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "error").text == ("text 2: a text longer than 2,000 characters is refused; "
                                                        "the model reads the first 128 tokens (this one has 2,001); "
                                                        "shorten or split it, or start serve.py with a larger --max-chars")


def test_the_page_reads_at_420_px_and_has_a_favicon(server, browser):
    """Issue 49: at 420 px the table overflowed and the probabilities were off screen; /favicon.ico was a 404."""
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 420, "height": 900, "deviceScaleFactor": 1, "mobile": True})
    open_page(browser, server)
    browser.execute_script("document.getElementById('examples').append(new Option("  # a real tweet as an example
                           "'an example tweet as long as the page shows one, seventy characters in all..'))")
    classify(browser, [text for text, _ in make_texts(2, seed=11)] + ["a-long-hashtag-without-spaces" * 4])
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#results tbody tr"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 420  # no sideways scrolling
    for cell in browser.find_elements(By.CSS_SELECTOR, "#results td.text"):  # a text has the row's width, not a
        assert cell.rect["width"] >= 300  # third of it (a tweet wrapped every two words)
    values = browser.find_elements(By.CSS_SELECTOR, "#results .bar .value")
    assert len(values) == 9
    for value in values:
        assert value.text.endswith("%") and value.rect["x"] >= 0 and value.rect["x"] + value.rect["width"] <= 420
    icon = browser.execute_async_script(
        "const done = arguments[0]; const href = document.querySelector('link[rel=icon]').href;"
        "Promise.all([href, '/favicon.ico'].map((u) => fetch(u).then((r) => r.ok && r.headers.get('content-type'))))"
        ".then(done, (e) => done(String(e)));")
    assert icon == ["image/svg+xml", "image/svg+xml"]


def test_the_api_docs_render_with_no_network(server, browser):
    """Issue 49: FastAPI's /docs loads Swagger UI from a CDN and stays blank offline; it is served from
    the fastapi-offline package, and every resource comes from the server."""
    from selenium.webdriver.common.by import By

    browser.get(server + "/docs")
    wait_until(lambda: "/predict/file" in browser.find_element(By.TAG_NAME, "body").text)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(server + "/") for url in loaded), loaded


def test_the_api_survives_a_fuzz_from_its_own_openapi_spec(server):
    """Generated requests for every operation in the spec, bounded in number: no 5xx, and every
    answer (status, content type, body) conforms to the spec. (schemathesis' own pytest
    plugin does not run under pytest 9, so its strategies drive hypothesis directly.)"""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operations = [(path, method.upper()) for path, methods in schema.raw_schema["paths"].items() for method in methods]
    assert ("/predict", "POST") in operations and ("/model", "GET") in operations
    for path, method in operations:
        @given(case=schema[path][method].as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            from schemathesis.checks import positive_data_acceptance

            # an upload can be schema-valid bytes yet not UTF-8 text, which is refused with a 400
            excluded = [positive_data_acceptance] if path == "/predict/file" else []
            case.call_and_validate(excluded_checks=excluded)

        check()

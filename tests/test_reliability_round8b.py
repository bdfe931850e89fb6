"""Issue 46, a hostile review of round 8's tests (branch i46e): realistic bugs planted one at a time in
the new code survived tests/test_reliability_round8.py and the existing suites; each test here was red
with its bug in (named in its docstring) and is green without it."""

from __future__ import annotations

import pytest


# --- serve.py: a blank id is given its row number, which another row may hold (a real defect) ------------

@pytest.fixture(scope="module")
def client(tiny_model_dir, tmp_path_factory):
    from conftest import save_tiny_classifier
    from fastapi.testclient import TestClient

    from tweetcls import Predictor
    from tweetcls.service import Limits, create_app

    model = save_tiny_classifier(tiny_model_dir, tmp_path_factory.mktemp("round8b") / "model")
    with TestClient(create_app(Predictor.from_run(model), {}, Limits())) as c:
        yield c


def test_a_blank_id_whose_row_number_another_row_holds_is_refused(client):
    """The service answers a row of blank id under its row number: with a row of that very id the
    answer held two rows of id 2 that could not be told apart, which the duplicate check was made to
    refuse."""
    clash = client.post("/predict/file", files={"file": ("a.csv", b"id,text\n2,happy\n,sad\n", "text/plain")})
    assert clash.status_code == 422, clash.text
    assert clash.json()["error"] == ("a.csv: row 2 has a blank id, answered as its row number 2, which row 1 has as "
                                     "its id (column 'id'); make the ids unique")
    later = client.post("/predict/file", files={"file": ("a.tsv", b"text\tid\nsad\t\nhappy\t1\n", "text/plain")})
    assert later.status_code == 422 and "row 1 has a blank id, answered as its row number 1, which row 2 has" in \
           later.json()["error"], later.text
    fine = client.post("/predict/file", files={"file": ("a.csv", b"id,text\n7,happy\n,sad\n", "text/plain")})
    assert fine.status_code == 200 and [line.split(",")[0] for line in fine.text.splitlines()[1:]] == ["7", "2"]

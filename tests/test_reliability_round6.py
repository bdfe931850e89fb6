"""Issue 46, the leftovers (stale temporaries, serve's --max-chars on uploads, old-Mac line ends,
labels differing in case, duplicate ids, duplicate ledger variants): each test was red before its fix."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, make_texts, one_error_line as _one_line




def _csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


# --- 1. a writer killed with SIGKILL ----------------------------------------------------------------

WRITER = """
import sys, time
from tweetcls.core.atomic import atomic_directory
with atomic_directory(sys.argv[1], "export") as folder:
    (folder / "model.onnx").write_text("half")
    print(folder.name, flush=True)
    time.sleep(60)
"""


def test_the_temporary_folder_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """`kill -9` during export.py --out DIR left .DIR.tmp-HOST-PID beside DIR forever; the next write removes
    it, and only it: a live process's folder and folders of other names stay (other hosts': round 8)."""
    from tweetcls.core.atomic import atomic_directory, this_host

    host = this_host()

    target = tmp_path / "onnx"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    stale = tmp_path / writer.stdout.readline().strip()
    assert stale.name == f".onnx.tmp-{host}-{writer.pid}" and stale.is_dir()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL and stale.is_dir()  # kill -9 ran no cleanup

    kept = [tmp_path / f".onnx.tmp-{host}-1",  # init: a live process
            tmp_path / f".onnx.tmp-{host}-{writer.pid}x", tmp_path / f".onnx.tmp-{host}-{writer.pid}.bak",
            tmp_path / f".other.tmp-{host}-{writer.pid}", tmp_path / f"onnx.tmp-{host}-{writer.pid}"]
    for folder in kept:
        folder.mkdir()
    (tmp_path / f".onnx.tmp-{host}-{writer.pid + 1}").write_text("a file, not a folder")  # pid + 1 may be alive: kept either way
    with atomic_directory(target, "export") as folder:
        (folder / "model.onnx").write_text("whole")
    assert not stale.exists()
    assert (target / "model.onnx").read_text() == "whole"
    assert all(folder.is_dir() for folder in kept)
    assert (tmp_path / f".onnx.tmp-{host}-{writer.pid + 1}").is_file()


# --- 2. serve.py --max-chars: one rule for JSON and uploads -----------------------------------------

@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    from conftest import train_tiny_run

    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("round6"))


@pytest.fixture(scope="module")
def client(run_dir):
    from fastapi.testclient import TestClient

    from tweetcls import Predictor
    from tweetcls.service import Limits, create_app

    with TestClient(create_app(Predictor.from_run(run_dir), {}, Limits(max_chars=10))) as c:
        yield c


def _upload(client, name: str, body: str):
    return client.post("/predict/file", files={"file": (name, body.encode(), "text/plain")})


@pytest.mark.parametrize("name, body, where", [
    ("a.txt", "ok\nhappy love wonderful\n", "line 2:"),
    ("a.txt", "ok\nhappy love wonderful\nsmile sunshine party\n", "line 2 (and 1 more texts):"),
    ("a.csv", "id,text\na,ok\nb,happy love wonderful\n", "row 2 (id b):"),
    ("a.tsv", "text\nok\nhappy love wonderful\n", "row 2:"),
])
def test_an_uploaded_text_over_max_chars_is_refused_as_a_json_one_is(client, name, body, where):
    """Uploads cut a text over --max-chars to its first 10 characters and classified that (HTTP 200),
    while the same text sent as JSON was a 422."""
    response = _upload(client, name, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.startswith(where) and "longer than 10 characters is refused" in error, error
    assert "(this one has 20)" in error and "serve.py with a larger --max-chars" in error
    as_json = client.post("/predict", json={"texts": ["ok", "happy love wonderful"]}).json()["error"]
    assert as_json.split(": ", 1) == ["text 2", error.split(": ", 1)[1]]  # one rule, in one sentence
    short = body.replace("happy love wonderful", "happy love").replace("smile sunshine party", "smile")
    assert _upload(client, name, short).status_code == 200  # 10 characters: the limit is inclusive


def test_the_page_states_the_upload_rule(client):
    limits = client.get("/model").json()["limits"]
    assert "cut" not in limits["file"] and "longer than 10 characters is refused" in limits["file"]


# --- 3. "\r", "\n" and "\r\n" end a line wherever a file holds one text a line ----------------------

def _predicted_texts(run_dir: Path, source: Path, out: Path) -> list[str]:
    import json

    from tweetcls.commands import predict

    assert predict.main([str(run_dir), "--input", str(source), "--output", str(out), "--no-progress-bar"]) == 0
    return [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").split("\n") if line]


def test_old_mac_line_ends_end_a_text_but_not_a_quoted_csv_field(run_dir, tmp_path):
    """A .txt or .jsonl whose lines end in a lone "\\r" was read as one text (predict.py: 1 row for 3)."""
    texts = ["happy love", "angry\u2028hate", "quiet table"]  # U+2028 is inside a tweet, not a line end
    (tmp_path / "mac.txt").write_bytes("happy love\rangry\u2028hate\r\nquiet table\r".encode())
    assert _predicted_texts(run_dir, tmp_path / "mac.txt", tmp_path / "a.jsonl") == texts
    (tmp_path / "mac.jsonl").write_bytes("".join(f'{{"text": "{t}"}}\r' for t in texts).encode())
    assert _predicted_texts(run_dir, tmp_path / "mac.jsonl", tmp_path / "b.jsonl") == texts
    (tmp_path / "mac.csv").write_bytes(b'id,text\r1,"two\rlines"\r2,"two\r\nlines"\r3,plain\r')
    assert _predicted_texts(run_dir, tmp_path / "mac.csv", tmp_path / "c.jsonl") == ["two\rlines", "two\r\nlines",
                                                                                      "plain"]


def test_an_old_mac_txt_upload_is_one_text_a_line(client):
    response = _upload(client, "mac.txt", "happy\rangry\r\ncalm\n")
    assert response.status_code == 200, response.text
    assert [r["text"] for r in csv.DictReader(response.text.splitlines())] == ["happy", "angry", "calm"]


def test_the_training_readers_split_lines_the_same_way(tmp_path):
    from tweetcls.datamodules.files import iter_lines, read_lines, read_records

    (tmp_path / "a.txt").write_bytes("one\rtwo\u2028half\r\nthree\n\rfive".encode())
    assert read_lines(tmp_path / "a.txt") == list(iter_lines(tmp_path / "a.txt")) == ["one", "two\u2028half", "three",
                                                                                      "", "five"]
    (tmp_path / "a.jsonl").write_bytes(b'{"text": "a", "label": "x"}\r{"text": "b", "label": "y"}\r')
    assert [r["text"] for r in read_records(tmp_path / "a.jsonl")] == ["a", "b"]


# --- 4. one label, two spellings -------------------------------------------------------------------

def test_labels_differing_only_in_case_or_spacing_are_refused(tmp_path):
    """'JOY' and 'joy' were trained as two classes (label_names ['JOY', 'anger', 'calm', 'joy'], exit 0)."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.sources import load_labelled_data

    def load(rows):
        path = _csv(tmp_path / "d.csv", rows)
        return load_labelled_data(str(path), data_dir=tmp_path)

    rows = make_texts(60)  # joy, anger, calm, joy, ...: rows 1, 2, 3, 4, ...
    with pytest.raises(UsageError, match=r"labels 'joy' \(first in row 1\) and 'JOY' \(first in row 4\) differ only "
                                         r"in case .* write them the same way in column 'label'"):
        load([(t, "JOY" if i == 3 else label) for i, (t, label) in enumerate(rows)])
    with pytest.raises(UsageError, match=r"labels 'very happy' \(first in row 1\) and 'very  happy' \(first in row 4\)"):
        load([(t, {0: "very happy", 3: "very  happy"}.get(i, label)) for i, (t, label) in enumerate(rows)])
    spaced = load([(t, " joy " if i == 3 else label) for i, (t, label) in enumerate(rows)])
    assert spaced.label_names == ["anger", "calm", "joy"]  # surrounding spaces were always one label


# --- 5. duplicate ids in predict.py's input --------------------------------------------------------

def test_predict_refuses_two_rows_of_one_id(run_dir, tmp_path, capsys, monkeypatch):
    """Rows sharing an id came back as output rows that could not be told apart (exit 0)."""
    from tweetcls.commands import predict

    monkeypatch.setattr(predict, "CHUNK", 2)  # the second copy comes after a chunk was classified and written
    rows = [("a", "happy"), ("b", "angry"), ("c", "calm"), ("a", "love")]
    (tmp_path / "in.jsonl").write_text("".join(f'{{"id": {i}, "text": "t"}}\n' for i in (7, 8, 7)))
    for source, words in ((_csv(tmp_path / "in.csv", rows, header=("id", "text")), "rows 1 and 4 share the id 'a'"),
                          (tmp_path / "in.jsonl", "rows 1 and 3 share the id 7")):
        out = tmp_path / "out.csv"
        assert predict.main([str(run_dir), "--input", str(source), "--output", str(out), "--no-progress-bar"]) == 2
        line = _one_line(capsys)
        assert words in line and "(column 'id'); make the ids unique" in line, line
        assert not out.exists() and list(tmp_path.glob(".out.csv*")) == []
    assert predict.main([str(run_dir), "--input", str(tmp_path / "in.csv"), "--id-column", "text",
                         "--no-progress-bar"]) == 0  # a column of unique ids is fine
    _csv(tmp_path / "none.csv", [(t,) for _, t in rows], header=("text",))
    assert predict.main([str(run_dir), "--input", str(tmp_path / "none.csv"), "--no-progress-bar"]) == 0  # row numbers


# --- 6. the compression ledger: one row per variant ------------------------------------------------

def test_a_variant_named_twice_is_one_row_of_the_ledger(run_dir, tmp_path, capsys):
    """evaluate.py --compress none,int8,prune:0.5,prune:0.50,int8 wrote two int8 and two prune:0.5 rows."""
    import json

    from tweetcls.commands import evaluate

    out = tmp_path / "ledger.json"
    assert evaluate.main([str(run_dir), "--compress", "int8,none,prune:0.5,prune:0.50,int8,none", "--latency-iters",
                          "1", "--latency-batch-size", "2", "--latency-seq-len", "8", "--output", str(out),
                          "--save-variants", str(tmp_path / "variants")]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["int8", "none", "prune:0.5"]
    assert "int8, none, prune:0.5: named more than once" in capsys.readouterr().err
    with open(tmp_path / "ledger.csv", newline="") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["int8", "none", "prune:0.5"]
    assert sorted(p.name for p in (tmp_path / "variants").iterdir()) == ["int8", "none", "prune_0.5"]

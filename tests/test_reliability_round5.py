"""Issue 46, fourth hostile pass (serve.py uploads, distill options): each test was red before its fix."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from conftest import save_tiny_classifier, train_tiny_run


@pytest.fixture(scope="module")
def client(tiny_model_dir, tiny_csv, tmp_path_factory):
    from tweetcls import Predictor
    from tweetcls.service import Limits, create_app

    run = train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("runs"))
    with TestClient(create_app(Predictor.from_run(run), {}, Limits())) as c:
        yield c


def _upload(client, name: str, body: str):
    return client.post("/predict/file", files={"file": (name, body.encode(), "text/plain")})


@pytest.mark.parametrize("name, body, words", [
    # an unquoted comma: csv.DictReader cut the text to "hello" and classified that, HTTP 200
    ("a.csv", "id,text\n1,hello, world\n2,fine\n", "row 1 (line 2) has 3 fields, the header 2"),
    # a short row: its text became "" and came back as an empty text
    ("a.csv", "id,text\n1\n2,fine\n", "row 1 (line 2) has 1 fields, the header 2"),
    # a column named twice: the last copy was classified
    ("a.csv", "text,text\nA,B\n", "names column 'text' 2 times"),
    # .json/.jsonl: each raw JSON line was classified as a text
    ("a.jsonl", '{"text": "great day"}\n', "not read here"),
    ("a.json", '["great day"]', "not read here"),
])
def test_an_upload_the_service_cannot_read_as_meant_is_refused(client, name, body, words):
    response = _upload(client, name, body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


def test_a_tsv_upload_is_read_as_a_table_not_as_lines(client):
    """Its header line and its other columns were classified as part of each text."""
    response = _upload(client, "a.tsv", "id\ttext\tlabel\nr1\tgreat day\tjoy\n")
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["id"], r["text"]) for r in rows] == [("r1", "great day")]


def test_a_model_beside_the_student_or_layers_is_refused_not_recorded(tiny_model_dir, tmp_path, capsys):
    """--student A --model B trained A and wrote B as the run's model in results.json (exit 0)."""
    from tweetcls.commands import train

    teacher = save_tiny_classifier(tiny_model_dir, tmp_path / "teacher")
    other = save_tiny_classifier(tiny_model_dir, tmp_path / "other")
    for choice in (["--student", str(tiny_model_dir)], ["--layers", "0"]):
        code = train.main(["--method", "distill", "--teacher", str(teacher), *choice, "--model", str(other),
                           "--dataset", str(tmp_path / "none.csv"), "--output-dir", str(tmp_path / "runs")])
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "drop --model" in err, err
    assert not (tmp_path / "runs").exists()


def test_a_distill_trial_is_checked_again_without_refusing_its_own_model_name(tiny_model_dir, tmp_path):
    """tune.py checks each trial's settings again (with_options): the name derived from the teacher passes."""
    from tweetcls.training.options import build_parser, check_args, with_options
    from tweetcls.training.settings import TrainSettings

    parsed = build_parser().parse_args(["--method", "distill", "--teacher", str(tmp_path / "teacher"), "--layers", "0",
                                        "--dataset", "x.csv"])
    check_args(parsed)
    args = TrainSettings.from_namespace(parsed)
    assert with_options(args, "trial 0", lr=1e-4).model == args.model == "teacher-0"


def test_a_file_size_limit_while_saving_variants_is_one_line_not_a_traceback(tmp_path):
    """evaluate.py --compress ... --save-variants under `ulimit -f`: safetensors' own SafetensorError
    (not an OSError) escaped as a traceback; now the same one line as every other EFBIG."""
    import resource

    import torch
    from safetensors.torch import save_file

    from tweetcls.core.atomic import atomic_directory
    from tweetcls.core.errors import StorageFull

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, hard))
    try:
        with pytest.raises(StorageFull, match="file-size limit"):
            with atomic_directory(tmp_path / "int8", "variant") as folder:
                save_file({"w": torch.zeros(100_000)}, str(folder / "model.safetensors"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert list(tmp_path.iterdir()) == []


def test_a_json_body_naming_a_field_twice_is_refused(client):
    """{"texts": ["a"], "texts": ["b", "c"]} was answered for b and c (HTTP 200): json keeps the last copy."""
    body = b'{"texts": ["a"], "texts": ["b", "c"]}'
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "'texts' twice" in response.json()["error"], response.text
    assert client.post("/predict", json={"texts": ["still fine"]}).status_code == 200

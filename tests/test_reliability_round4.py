"""Issue 46, the fresh hostile pass (/tmp/h46/cases.md, docs/reliability.md): each test was red
before its fix. Outputs never replace the user's data; labels are trained as the user wrote them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import make_texts, one_error_line as _one_line




@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    from conftest import train_tiny_run

    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("round4"))


def _csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


# --- data loss ------------------------------------------------------------------------------------

def test_overwrite_keeps_a_user_file_inside_the_runs_checkpoints_or_model(tiny_model_dir, tiny_csv, tmp_path, capsys):
    """--overwrite deleted run/checkpoints/notes.txt and run/model/mine.md (only the top level was checked)."""
    from tweetcls.commands import train

    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path), "--run-name",
            "r", "--batch-size", "16", "--max-epochs", "1", "--no-progress-bar", "--no-test"]
    assert train.main(argv) == 0
    for inside in ("checkpoints/notes.txt", "model/mine.md"):
        (tmp_path / "r" / inside).write_text("mine")
        capsys.readouterr()
        assert train.main([*argv, "--overwrite"]) == 2
        assert f"({inside})" in _one_line(capsys)
        assert (tmp_path / "r" / inside).read_text() == "mine"
        (tmp_path / "r" / inside).unlink()
    assert train.main([*argv, "--overwrite"]) == 0  # a run holding only its own files is still replaced


def test_predict_output_is_never_the_input_nor_a_user_file(run_dir, tmp_path, capsys):
    """--input x.csv --output x.csv (or a symlink to it) replaced the user's data; an existing user
    file at --output was replaced too. A file predict.py wrote may be rewritten."""
    from tweetcls.commands import predict

    source = _csv(tmp_path / "in.csv", make_texts(5))
    original = source.read_bytes()
    (tmp_path / "link.csv").symlink_to(source)
    user = tmp_path / "user.csv"
    user.write_text("my,own\n1,2\n")
    for out, words in ((source, "is the input file"), (tmp_path / "link.csv", "is the input file"),
                       (user, "was not written by predict.py")):
        assert predict.main([str(run_dir), "--input", str(source), "--output", str(out), "--no-progress-bar"]) == 2
        assert words in _one_line(capsys)
    assert source.read_bytes() == original and user.read_text() == "my,own\n1,2\n"
    for name in ("ours.csv", "ours.jsonl"):
        for _ in range(2):
            assert predict.main([str(run_dir), "--input", str(source), "--output", str(tmp_path / name),
                                 "--no-progress-bar"]) == 0


def test_evaluate_output_is_never_the_data_nor_a_user_file(run_dir, tmp_path, capsys, tiny_csv):
    from tweetcls.commands import evaluate

    data = tmp_path / "data.csv"
    data.write_bytes(tiny_csv.read_bytes())
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}\n')
    assert evaluate.main([str(run_dir), "--dataset", str(data), "--split", "test", "--output", str(data)]) == 2
    assert "is the input file" in _one_line(capsys)
    assert evaluate.main([str(run_dir), "--split", "test", "--output", str(notes)]) == 2
    assert "was not written by evaluate.py" in _one_line(capsys)
    assert data.read_bytes() == tiny_csv.read_bytes() and notes.read_text() == '{"mine": 1}\n'
    for _ in range(2):
        assert evaluate.main([str(run_dir), "--split", "test", "--output", str(tmp_path / "e.json")]) == 0


def test_the_compression_ledger_never_deletes_a_user_folder_of_the_same_name(tmp_path):
    """The ledger's TensorBoard folder <output's folder>/compression/<name> was rmtree'd whatever it held."""
    from tweetcls.compress import ledger_run
    from tweetcls.core.errors import UsageError

    mine = tmp_path / "compression" / "ledger"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(UsageError, match="did not write"):
        ledger_run.write_log_dir(mine, lambda folder: None)
    assert (mine / "thesis.tex").read_text() == "mine"
    ours = tmp_path / "compression" / "ours"
    ledger_run.write_log_dir(ours, lambda folder: (folder / "events.out.tfevents.1").write_text("x"))
    ledger_run.write_log_dir(ours, lambda folder: None)  # an earlier ledger's folder is replaced
    assert not (ours / "events.out.tfevents.1").exists()


# --- silently wrong -------------------------------------------------------------------------------

def test_predict_refuses_a_file_name_given_as_a_text(run_dir, tmp_path, capsys):
    """`predict.py RUN tweets.txt` classified the string 'tweets.txt' and exited 0."""
    from tweetcls.commands import predict

    existing = tmp_path / "tweets.txt"
    existing.write_text("happy\n")
    for arg in (str(existing), "missing.csv"):
        assert predict.main([str(run_dir), arg]) == 2
        assert f"--input {arg}" in _one_line(capsys)
    assert predict.main([str(run_dir), "see notes.txt later"]) == 0  # a sentence is a text


def _load(path: Path, **kw):
    from tweetcls.datamodules.sources import load_labelled_data

    return load_labelled_data(str(path), data_dir=path.parent, **kw)


def test_the_text_column_is_never_the_label_column(tmp_path):
    """--text-column label --label-column label trained a model that reads its answer (exit 0)."""
    from tweetcls.core.errors import UsageError

    path = _csv(tmp_path / "d.csv", make_texts(60))
    with pytest.raises(UsageError, match="both 'label'"):
        _load(path, text_column="label", label_column="label")


def test_a_split_file_is_never_the_training_file(tmp_path):
    """--val-file/--test-file = the training file scored the model on its own training rows (exit 0)."""
    from tweetcls.core.errors import UsageError

    path = _csv(tmp_path / "d.csv", make_texts(60))
    (tmp_path / "same.csv").symlink_to(path)
    other = _csv(tmp_path / "v.csv", make_texts(12, seed=1))
    with pytest.raises(UsageError, match="--val-file .* is the training file"):
        _load(path, val_file=tmp_path / "same.csv")
    with pytest.raises(UsageError, match="--test-file .* is the training file"):
        _load(path, test_file=path)
    with pytest.raises(UsageError, match="are the same file"):
        _load(path, val_file=other, test_file=other)


def test_labels_written_differently_are_never_merged_silently(tmp_path):
    """'01' and '1' were merged into one class '1' (3 labels written, 2 trained, no word). Pass 6 found
    the opposite too ('2' and '02' trained as two classes, no word): both are refused now, in one
    line naming both spellings, and the user chooses. 2 and '2.0' are one number, one class."""
    from tweetcls.core.errors import UsageError

    rows = [(t, {"joy": "01", "anger": "1", "calm": "2"}[label]) for t, label in make_texts(60)]
    with pytest.raises(UsageError, match="'01' .* and '1' .* are one number written two ways"):
        _load(_csv(tmp_path / "d.csv", rows))
    rows = [(t, {"joy": "0", "anger": "1", "calm": "2.0"}[label]) for t, label in make_texts(60)]
    assert _load(_csv(tmp_path / "e.csv", rows)).label_names == ["0", "1", "2"]


def test_comma_joined_labels_are_refused_not_trained_as_classes(tmp_path):
    """'joy,calm' (a multi-label row) became a class of its own beside 'joy' and 'calm'."""
    from tweetcls.core.errors import UsageError

    rows = [(t, label + ",calm" if i % 4 == 0 else label) for i, (t, label) in enumerate(make_texts(60))]
    with pytest.raises(UsageError, match="joins labels that also occur alone"):
        _load(_csv(tmp_path / "d.csv", rows))
    rows = [(t, "happy, mostly" if label == "joy" else label) for t, label in make_texts(60)]
    assert "happy, mostly" in _load(_csv(tmp_path / "e.csv", rows)).label_names  # a label with a comma is a label


def test_a_label_column_of_texts_is_refused(tmp_path):
    """A label column holding a different text per row trained 48 one-example classes (exit 0)."""
    from tweetcls.core.errors import UsageError

    rows = [(t, label, f"note {i}") for i, (t, label) in enumerate(make_texts(60))]
    with pytest.raises(UsageError, match="is it a text column"):
        _load(_csv(tmp_path / "d.csv", rows, header=("text", "label", "note")), label_column="note")


def test_predict_to_stdout_prints_nothing_when_a_late_row_of_the_input_file_is_bad(run_dir, tmp_path, capsys,
                                                                                    monkeypatch):
    """Leftover (c): to stdout, the rows before a bad one were printed, then the error (--output is atomic)."""
    from tweetcls.commands import predict

    monkeypatch.setattr(predict, "CHUNK", 2)
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "happy love\n" * 7 + "a,b\n", encoding="utf-8")
    assert predict.main([str(run_dir), "--input", str(source), "--no-progress-bar"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "row 8 (line 9) has 2 fields" in err

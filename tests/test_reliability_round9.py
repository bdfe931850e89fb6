"""Issue 46, sixth hostile pass (outputs onto users' files, data files changed under a run, label
spellings, runs moved or shared between commands): each test was red before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_texts, train_tiny_run, one_error_line as _one_line




@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("round9"))


# --- data loss -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, data", [
    ("labels.jsonl", '{"id": 0, "text": "so happy", "label": "joy"}\n'),
    ("labels.csv", "id,text,label,annotator\n0,so happy,joy,ann1\n"),
    ("annotated.csv", "id,text,label,probability,empty,p_joy,gold\n1,so happy,joy,0.9,False,0.9,joy\n"),
    ("annotated.jsonl", ('{"id": 1, "text": "so happy", "label": "joy", "probability": 0.9, "probabilities": '
                         '{"joy": 0.9}, "empty": false, "gold": "joy"}\n')),
])
def test_predict_never_replaces_a_labelled_file_with_an_id_text_label_header(run_dir, tmp_path, capsys, name, data):
    """`predict.py RUN --input new.txt --output labels.jsonl` replaced the user's labelled data: rows
    with id, text and label (or a CSV header starting id,text,label,) were taken for predictions; so
    was a predictions file the user had added a column (their gold labels) to."""
    from tweetcls.commands import predict

    mine = tmp_path / name
    mine.write_text(data)
    assert predict.main([str(run_dir), "love", "--output", str(mine)]) == 2
    assert "was not written by predict.py" in _one_line(capsys)
    assert mine.read_text() == data


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_predict_still_replaces_its_own_predictions(run_dir, tmp_path, suffix):
    from tweetcls.commands import predict

    out = tmp_path / f"out{suffix}"
    assert predict.main([str(run_dir), "love", "--output", str(out)]) == 0
    assert predict.main([str(run_dir), "hate", "hate", "--output", str(out)]) == 0
    assert "hate" in out.read_text()


# --- silently wrong results ------------------------------------------------------------------------

def test_a_label_written_with_and_without_zero_padding_is_refused(tmp_path):
    """Labels "2" and "02" (class codes exported two ways) were trained as two classes without a word."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.sources import local_file

    rows = [f"text number {i},{['1', '2', '3'][i % 3]}" for i in range(60)] + ["one more text,02"]
    data = tmp_path / "codes.csv"
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(UsageError, match=r"labels '2' \(first in row 2\) and '02' \(first in row 61\) are one number"):
        local_file(data, "text", "label")


def test_evaluate_naming_the_runs_own_file_keeps_its_own_test_file(tiny_model_dir, tmp_path):
    """A run trained with --test-file, scored with `--dataset TRAIN.csv` (its own file, named): the test
    split became 10% of the training file, rows the model trained on, reported as its test score."""
    from tweetcls.commands import evaluate

    train, test = tmp_path / "train.csv", tmp_path / "own-test.csv"
    train.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in make_texts(120)))
    test.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in make_texts(21, seed=5)))
    run = train_tiny_run(tiny_model_dir, train, tmp_path / "runs", "--test-file", str(test), "--max-steps", "1")
    out = tmp_path / "named.json"
    assert evaluate.main([str(run), "--dataset", f"{tmp_path}/./train.csv", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["examples"] == 21


@pytest.fixture()
def run_on_own_copy(tiny_model_dir, tiny_csv, tmp_path) -> tuple[Path, Path]:
    """(run, its data file): a run trained on a copy of the tiny CSV that the test may change."""
    data = tmp_path / "data.csv"
    data.write_bytes(tiny_csv.read_bytes())
    return train_tiny_run(tiny_model_dir, data, tmp_path / "runs", "--max-steps", "1"), data


def test_a_data_file_changed_since_training_is_refused_by_evaluate_and_resume(run_on_own_copy, capsys):
    """Rows added to the data file moved rows between its 80/10/10 splits: evaluate.py scored the run
    on rows it had trained on, --resume went on training on its former test rows, and predict.py
    --abstain-precision chose its threshold on training rows, all silently."""
    from tweetcls.commands import evaluate, predict, train

    run, data = run_on_own_copy
    original = data.read_bytes()
    data.write_bytes(original + b"a new text with love,joy\n" * 30)
    assert evaluate.main([str(run), "--output", str(run.parent / "e.json")]) == 2
    assert f"--dataset {data} is not the file {run} trained on" in _one_line(capsys)
    (run / "results.json").rename(run.parent / "results.json")  # the run as if stopped before the end
    assert train.main(["--resume", str(run)]) == 2
    assert "resuming would go on training on other rows" in _one_line(capsys)
    (run.parent / "results.json").rename(run / "results.json")
    assert predict.main([str(run), "--abstain-precision", "0.5", "love"]) == 2  # a threshold chosen on its val split
    assert "the threshold would be chosen on rows the model trained on" in capsys.readouterr().err
    assert not (run / "abstain.json").exists()
    data.write_bytes(original)
    assert evaluate.main([str(run), "--output", str(run.parent / "e.json")]) == 0


# --- tracebacks --------------------------------------------------------------------------------------

def test_the_library_refuses_more_threads_than_cores(run_dir):
    """`Predictor.from_run(run, threads=10**6)` set torch's thread count, and every later operation of
    the process failed with "RuntimeError: can't start new thread" (predict.py's flag was checked)."""
    import os

    import torch
    from tweetcls.core.errors import ParameterError

    from tweetcls import Predictor

    before = torch.get_num_threads()
    with pytest.raises(ParameterError, match=r"threads is \d+: this machine has \d+ CPU cores"):
        Predictor.from_run(run_dir, threads=(os.cpu_count() or 1) + 1)
    assert torch.get_num_threads() == before


def test_the_service_names_a_body_that_is_not_utf8(run_dir):
    """A JSON body in Latin-1 (`Content-Type: application/json; charset=latin-1`, "café") got FastAPI's
    bare 400 `{"detail": "There was an error parsing the body"}`, naming neither the byte nor the fix."""
    from fastapi.testclient import TestClient

    from tweetcls import Predictor
    from tweetcls.service import create_app

    with TestClient(create_app(Predictor.from_run(run_dir), {})) as client:
        response = client.post("/predict", content='{"texts": ["café"]}'.encode("latin-1"),
                               headers={"Content-Type": "application/json; charset=latin-1"})
        assert response.status_code == 422
        assert response.json() == {"error": "body: byte 15 (0xe9) is not UTF-8; send the JSON encoded as UTF-8 "
                                            "(a Content-Type charset is not read)"}
        assert client.post("/predict", json={"texts": ["café"]}).status_code == 200


def test_tune_refuses_to_go_on_with_other_fixed_options(tiny_model_dir, tiny_csv, tmp_path, monkeypatch, capsys):
    """A study run again with --batch-size 8 after 16 mixed both kinds of trials without a word, and
    best.yaml gave the best (batch 16) trial's lr with batch_size 8, a configuration never trained."""
    import optuna
    from tweetcls.commands import tune

    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    monkeypatch.setattr(optuna.study.Study, "optimize", lambda *a, **k: None)  # no trial: only the checks run
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
            "--study-name", "s", "--space", str(space), "--trials", "1"]
    assert tune.main([*argv, "--batch-size", "16"]) == 2
    assert "has no complete trial yet" in capsys.readouterr().err.splitlines()[-1]
    assert tune.main([*argv, "--batch-size", "8"]) == 2
    assert "study s was run with --batch-size 16, not 8" in _one_line(capsys)  # before any trial
    assert tune.main([*argv, "--batch-size", "16", "--num-workers", "1"]) == 2  # hardware may differ
    assert "has no complete trial yet" in capsys.readouterr().err.splitlines()[-1]


# --- one-line errors whose fix did not help ----------------------------------------------------------

@pytest.mark.parametrize("header, hint", [
    ("text;label", "the header is one column holding semicolons"),
    ("text\tlabel", "the header is one column holding tabs"),
    (" text , label ", "its header names ' text ', with spaces around the name: remove them from the header"),
    ("sep=,\ntext,label", "its first line is Excel's 'sep=' line, not the header: delete that line"),
])
def test_a_header_the_column_flag_cannot_fix_is_named(tmp_path, header, hint):
    """A ";"- or tab-separated .csv, Excel's "sep=," line, " text " in the header: each said "pass
    --text-column", which no value fixes, and the columns it listed looked right."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.sources import local_file

    sep = ";" if ";" in header else "\t" if "\t" in header else ","
    data = tmp_path / "data.csv"
    data.write_text(header + "\n" + "".join(f"{t}{sep}{lab}\n" for t, lab in make_texts(30)))
    with pytest.raises(UsageError, match="; " + hint.replace(".", r"\.").replace("(", r"\(")):
        local_file(data, "text", "label")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU honours 16-mixed")
def test_a_precision_lightning_would_swap_is_refused(run_dir, tiny_model_dir, tiny_csv, tmp_path, capsys):
    """`--precision 16-mixed` on a CPU trained (evaluate.py: scored) in bf16-mixed, a Lightning warning in
    the scroll, while config.yaml and results.json (evaluate.py's JSON) recorded 16-mixed."""
    from tweetcls.commands import evaluate, train

    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
            "--run-name", "r", "--precision", "16-mixed"]
    assert train.main(argv) == 2
    assert _one_line(capsys).endswith("Lightning would use bf16-mixed instead: pass --precision bf16-mixed "
                                      "(or 32-true)")
    assert not (tmp_path / "r").exists()
    assert evaluate.main([str(run_dir), "--precision", "16", "--output", str(tmp_path / "e.json")]) == 2
    assert "--precision 16: this machine cannot run 16-mixed" in _one_line(capsys)
    assert not (tmp_path / "e.json").exists()


def test_an_export_finished_meanwhile_into_the_same_folder_is_kept(tmp_path):
    """`export.py RUN --format hf --out D` and `--format onnx --out D` started together: both exited 0,
    and D held only the one that finished last (one after the other, the second is refused)."""
    from tweetcls.core.atomic import atomic_directory
    from tweetcls.core.errors import UsageError
    from tweetcls.core.ownership import mark

    folder = tmp_path / "D"
    with pytest.raises(UsageError, match="was written by another command while this one worked"), \
            atomic_directory(folder, "onnx") as tmp:
        (tmp / "model.onnx").write_text("onnx")
        folder.mkdir()  # the other command's export lands first
        (folder / "config.json").write_text("hf")
        mark(folder, "hf")
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["D"]


def test_a_run_still_training_or_stopped_is_named_so(tmp_path):
    """predict.py, evaluate.py, export.py and serve.py on a run still training (or stopped) said it
    "holds no run (results.json), adapter ... or saved model": nothing about training or --resume."""
    from tweetcls.core.errors import UsageError

    from tweetcls.loader import load_run

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("method: lora\n")
    with pytest.raises(UsageError, match=f"is a run that has not finished .*python train.py --resume {run}$"):
        load_run(run)


def test_a_checkpoint_file_is_not_reported_as_not_found(tmp_path):
    """`predict.py RUN/checkpoints/last.ckpt` said "tried local directory ...: not found" of a file that is there."""
    from tweetcls.core.errors import UsageError

    from tweetcls.loader import load_run

    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    with pytest.raises(UsageError, match=r"last\.ckpt is a file; pass the run directory it belongs to"):
        load_run(ckpt)


def test_a_split_file_with_other_columns_names_the_split_option(tmp_path):
    """A --test-file headed `tweet,emotion` said "pass --text-column": that flag renames the column of
    every file, the training file's too, so following it broke the training file instead."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.sources import local_file

    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in make_texts(60)))
    test.write_text("tweet,emotion\n" + "".join(f"{t},{lab}\n" for t, lab in make_texts(9, seed=3)))
    with pytest.raises(UsageError, match=r"; --test-file needs the training file's columns \('text', 'label'\)"):
        local_file(train, "text", "label", test_file=test)


def test_abstain_precision_never_replaces_a_model_card_the_user_edited(run_on_own_copy, capsys):
    """`predict.py RUN --abstain-precision P` rewrote RUN/model/README.md whatever it held: a card the
    user had written (before pushing the model to a hub) was replaced and their text lost. The card
    this project wrote is still rewritten, each time a threshold is chosen."""
    from tweetcls.commands import predict

    run, _ = run_on_own_copy
    card = run / "model" / "README.md"
    assert predict.main([str(run), "--abstain-precision", "0.3", "love"]) == 0
    assert "0.3)" in card.read_text()  # ours: rewritten with the threshold
    (run / "abstain.json").unlink()
    assert predict.main([str(run), "--abstain-precision", "0.32", "love"]) == 0
    assert "0.32)" in card.read_text()  # ours, whatever threshold it states: rewritten again
    card.write_text("# My model\n\nNotes I wrote.\n")
    capsys.readouterr()
    assert predict.main([str(run), "--abstain-precision", "0.3", "love"]) == 0
    assert card.read_text() == "# My model\n\nNotes I wrote.\n"
    assert "README.md was edited (or is missing), so it was left as it is" in capsys.readouterr().err


def test_tune_never_replaces_a_users_files_in_a_folder_named_as_the_study(tiny_model_dir, tiny_csv, tmp_path, capsys):
    """`tune.py --output-dir D --study-name notes` on the user's folder D/notes replaced their own
    summary.md and best.yaml with the study's."""
    from tweetcls.commands import tune

    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "summary.md").write_text("my summary")
    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    assert tune.main(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
                      "--study-name", "notes", "--space", str(space), "--trials", "1"]) == 2
    assert "is not a study's folder (no study.db, no trials/) and holds summary.md" in _one_line(capsys)
    assert sorted(p.name for p in mine.iterdir()) == ["summary.md"] and (mine / "summary.md").read_text() == "my summary"


def test_compare_never_replaces_a_users_comparison_file(run_dir, capsys):
    """`evaluate.py --compare RUNS` wrote comparison.md/.csv/.json/.png into RUNS whatever was there: a
    user's own comparison.md in their runs folder was replaced. Its own files are replaced as before."""
    from tweetcls.commands import evaluate

    runs = run_dir.parent
    (runs / "comparison.md").write_text("my notes on the runs\n")
    try:
        assert evaluate.main(["--compare", str(runs)]) == 2
        assert "holds comparison.md that evaluate.py --compare did not write" in _one_line(capsys)
        assert (runs / "comparison.md").read_text() == "my notes on the runs\n"
        (runs / "comparison.md").unlink()
        assert evaluate.main(["--compare", str(runs)]) == 0
        assert evaluate.main(["--compare", str(runs)]) == 0  # its own table, replaced
    finally:
        for name in ("comparison.md", "comparison.csv", "comparison.json", "comparison.png"):
            (runs / name).unlink(missing_ok=True)


def test_a_folder_of_another_kind_is_named_with_its_article(tmp_path):
    """`export.py RUN --format onnx --out RUN` said "is a run folder, not a onnx folder"."""
    from tweetcls.core.errors import UsageError
    from tweetcls.core.ownership import check_replaceable, mark

    (tmp_path / "config.yaml").write_text("x")
    mark(tmp_path, "run")
    with pytest.raises(UsageError, match="is a run folder, not an onnx folder"):
        check_replaceable(tmp_path, "onnx")


def test_resume_refuses_a_config_yaml_edited_since_the_run_started(run_on_own_copy, capsys):
    """config.yaml's lr edited by hand (0.005 -> 0.01), then --resume: the optimizer and schedule came
    back from the checkpoint, so training went on at 0.005 while results.json recorded 0.01."""
    import yaml
    from tweetcls.commands import train

    run, _ = run_on_own_copy
    (run / "results.json").rename(run.parent / "results.json")  # the run as if stopped before the end
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "lr": 0.01}, sort_keys=False))
    assert train.main(["--resume", str(run)]) == 2
    assert _one_line(capsys).endswith(f"{run / 'config.yaml'} says --lr 0.01, but the run's checkpoint was trained "
                                      "with 0.005: config.yaml was changed since the run started; restore it, or "
                                      "start a new run (another --run-name) with the new value")


def test_tune_lets_workers_resolve_their_own_precision(tiny_model_dir, tiny_csv, tmp_path, monkeypatch, capsys):
    """Workers on other machines share a study; "auto" precision resolves per machine (bf16-mixed or
    32-true), so the fixed-options check must not refuse a worker over it."""
    import optuna
    from tweetcls.commands import tune

    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    monkeypatch.setattr(optuna.study.Study, "optimize", lambda *a, **k: None)
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
            "--study-name", "s", "--space", str(space), "--trials", "1"]
    assert tune.main([*argv, "--precision", "bf16-mixed"]) == 2
    assert tune.main([*argv, "--precision", "32-true"]) == 2
    assert "has no complete trial yet" in capsys.readouterr().err.splitlines()[-1]


def test_evaluate_scores_the_rows_the_run_scored_under_max_eval_samples(tiny_model_dir, tiny_csv, tmp_path, capsys):
    """A run trained with --max-eval-samples scored its first N test rows; a plain `evaluate.py RUN`
    scored every row and gave another number than results.json, with nothing saying why."""
    from tweetcls.commands import evaluate

    run = train_tiny_run(tiny_model_dir, tiny_csv, tmp_path / "runs", "--max-eval-samples", "5")
    results = json.loads((run / "results.json").read_text())
    assert results["eval_examples"] == {"validation": 5, "test": 5}
    out = tmp_path / "eval.json"
    assert evaluate.main([str(run), "--split", "test", "--output", str(out)]) == 0
    scored = json.loads(out.read_text())
    assert scored["examples"] == 5 and "as the run did" in capsys.readouterr().err
    assert scored["metrics"]["loss"] == pytest.approx(results["test"]["loss"], abs=1e-5)
    assert evaluate.main([str(run), "--split", "test", "--max-eval-samples", "7", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["examples"] == 7  # asked for: asked wins


@pytest.mark.parametrize("option", ["--test-file", "--val-file"])
def test_a_held_out_file_that_copies_the_training_rows_is_refused(tmp_path, option):
    """Pass 7's D8: `--test-file copy.csv`, a copy of the training file by another name, trained and
    reported a test score on rows the model trained on (only the same path was refused)."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.sources import local_file

    rows = "text,label\n" + "".join(f"{t},{l}\n" for t, l in make_texts(60))
    train, copy, held_out = tmp_path / "train.csv", tmp_path / "copy.csv", tmp_path / "held.csv"
    train.write_text(rows)
    copy.write_text(rows.replace("\n", "\r\n"))  # other bytes, the same rows
    held_out.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in make_texts(12, seed=7)))
    key = "test_file" if option == "--test-file" else "val_file"
    with pytest.raises(UsageError, match=f"{option} {copy}: every one of its texts is in the training file"):
        local_file(train, "text", "label", **{key: copy})
    local_file(train, "text", "label", **{key: held_out})  # a held-out file of new texts is used

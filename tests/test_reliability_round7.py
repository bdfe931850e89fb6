"""Issue 46, fifth hostile pass (signals in evaluate.py and the teacher pass, the ledger's reruns,
tune.py's space, odd encodings, YAML files, the Python API): each test was red before its fix."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import save_tiny_classifier, train_tiny_run, one_error_line as _one_line




@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tiny_csv, tmp_path_factory.mktemp("round6"))


# --- data loss, and reruns that our own leftovers blocked ---------------------------------------------

def test_an_interrupted_ledger_log_never_blocks_the_next_ledger(tmp_path):
    """Ctrl-C or SIGTERM while the ledger wrote its TensorBoard folder left event files its marker did
    not list; every later `evaluate.py RUN --compress ...` then refused the folder as the user's."""
    from tweetcls.compress import ledger_run

    folder = tmp_path / "compression" / "tiny-test"

    def stopped(into: Path) -> None:
        (into / "events.out.tfevents.1").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ledger_run.write_log_dir(folder, stopped)
    ledger_run.write_log_dir(folder, lambda into: (into / "events.out.tfevents.2").write_text("whole"))
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["events.out.tfevents.2"]


def test_the_ledger_refuses_a_users_folder_before_building_any_variant(run_dir, monkeypatch, capsys):
    """The refusal came after every variant was built, timed and scored (minutes on a real model)."""
    from tweetcls.commands import evaluate
    from tweetcls.compress import ledger_run

    mine = run_dir / "compression" / "tiny-test"
    mine.mkdir(parents=True)
    (mine / "notes.md").write_text("mine")
    monkeypatch.setattr(ledger_run, "build_variant", lambda *a, **k: pytest.fail("built a variant first"))
    try:
        assert evaluate.main([str(run_dir), "--compress", "none,int8", "--latency-iters", "1"]) == 2
        assert "did not write (notes.md)" in _one_line(capsys)
    finally:
        (mine / "notes.md").unlink()
        mine.rmdir()


def test_a_ledger_written_into_a_run_never_blocks_its_overwrite(run_dir):
    """RUN/compression/ (evaluate.py's own ledger log) made `train.py --run-name RUN --overwrite` refuse
    the run as holding files train.py did not write; a user's file in there is still refused."""
    from tweetcls.compress.ledger_run import write_log_dir
    from tweetcls.core.errors import UsageError
    from tweetcls.core.runs import check_run_dir

    logs = run_dir / "compression"
    write_log_dir(logs / "tiny-test", lambda into: (into / "events.out.tfevents.1").write_text("x"))
    try:
        assert check_run_dir(run_dir.parent, run_dir.name, overwrite=True) == run_dir
        (logs / "thesis.tex").write_text("mine")
        with pytest.raises(UsageError, match="compression/thesis.tex"):
            check_run_dir(run_dir.parent, run_dir.name, overwrite=True)
    finally:
        import shutil

        shutil.rmtree(logs)


def test_evaluate_never_replaces_a_users_file_named_like_its_default_output(run_dir, tiny_csv, tmp_path,
                                                                           monkeypatch, capsys):
    """On a model folder the ledger is written into the current folder: a user's
    compression-<data>-test.csv/.json there was replaced without a word."""
    from tweetcls.commands import evaluate

    monkeypatch.chdir(tmp_path)
    for name in ("compression-tiny-test.csv", "compression-tiny-test.json"):
        (tmp_path / name).write_text("my notes\n")
        assert evaluate.main([str(run_dir / "model"), "--dataset", str(tiny_csv), "--compress", "none",
                              "--latency-iters", "1"]) == 2
        assert "was not written by evaluate.py" in _one_line(capsys)
        assert (tmp_path / name).read_text() == "my notes\n"
        (tmp_path / name).unlink()


# --- signals: one line, the right exit status, nothing half-written trusted --------------------------

def test_sigterm_or_ctrl_c_while_evaluate_scores_is_one_line_with_its_exit_status(run_dir, monkeypatch, capsys):
    """SIGTERM in Lightning's test loop is a bare SystemExit: evaluate.py exited 0 (success) with no output
    and no word; Ctrl-C there was Lightning's sys.exit(1)."""
    import lightning as L
    from lightning.pytorch.utilities.exceptions import SIGTERMException
    from tweetcls.commands import evaluate

    for raised, code, words in ((SIGTERMException(), 143, "stopped by SIGTERM while scoring"),
                                (SystemExit(1), 130, "interrupted while scoring")):
        def test(*args, _raised=raised, **kwargs):
            raise _raised

        monkeypatch.setattr(L.Trainer, "test", test)
        assert evaluate.main([str(run_dir), "--output", str(run_dir.parent / "e.json")]) == code
        assert words in _one_line(capsys)


def test_sigterm_during_the_teacher_pass_stops_it(tiny_model_dir, tmp_path, monkeypatch):
    """Lightning's predict only notes a SIGTERM: the teacher labelled every chunk and the student trained
    on, ignoring `kill`; a chunk it had not finished must not come back as logits."""
    import lightning as L
    from tweetcls.core.errors import Interrupted
    from tweetcls.distill import teacher_cache

    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path / "cache"))
    teacher = save_tiny_classifier(tiny_model_dir, tmp_path / "teacher")

    def predict(self, *args, **kwargs):
        self._signal_connector.received_sigterm = True  # as its SIGTERM handler does, then it runs on

    monkeypatch.setattr(L.Trainer, "predict", predict)
    with pytest.raises(Interrupted) as stop:
        teacher_cache.cached_teacher_logits(teacher, ["happy day", "awful rage"], ["a", "b", "c"], 32)
    assert stop.value.exit_code == 143 and "cached" in str(stop.value)
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_sigterm_while_train_scores_the_trained_model_is_143_not_success(tiny_model_dir, tiny_csv, tmp_path,
                                                                        monkeypatch, capsys):
    """After fit, SIGTERM in the test loop left a run without results.json and train.py exited 0."""
    import lightning as L
    from lightning.pytorch.utilities.exceptions import SIGTERMException
    from tweetcls.commands import train

    def test(*args, **kwargs):
        raise SIGTERMException()

    monkeypatch.setattr(L.Trainer, "test", test)
    assert train.main(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(tmp_path),
                       "--run-name", "run", "--max-steps", "2", "--batch-size", "16", "--no-progress-bar"]) == 143
    assert "stopped by SIGTERM while scoring the trained model; continue with: python train.py --resume" in \
        capsys.readouterr().err
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize("command", ["evaluate", "export", "tune", "serve"])
def test_ctrl_c_is_one_line_not_a_traceback(command, monkeypatch, capsys):
    """Ctrl-C while loading or exporting printed a KeyboardInterrupt traceback (train, predict and
    pretrain already said one line)."""
    import importlib

    module = importlib.import_module(f"tweetcls.commands.{command}")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, {"serve": "make_app"}.get(command, "run"), interrupted)
    argv = {"evaluate": ["RUN"], "export": ["RUN", "--format", "onnx"], "tune": ["--trials", "1"], "serve": ["RUN"]}[command]
    try:
        code = module.main(argv)
    except KeyboardInterrupt:  # caught here, or pytest would take it for the user's own Ctrl-C and stop
        pytest.fail("KeyboardInterrupt escaped main: a traceback for the user")
    assert code == 130
    assert "interrupted" in _one_line(capsys)


# --- the teacher-logit cache never trusts a damaged chunk -----------------------------------------------

def test_a_damaged_teacher_logit_chunk_is_labelled_again_and_a_nan_teacher_is_named(tiny_model_dir, tmp_path,
                                                                                    monkeypatch):
    """A chunk cut short (written before the cache was atomic, a crash) was a SafetensorError traceback on
    every later run; one of the wrong length a ValueError; a NaN one trained into "loss became nan;
    lower --lr", which no --lr fixes."""
    from safetensors.torch import load_file, save_file
    from tweetcls.core.errors import UsageError
    from tweetcls.distill import teacher_cache

    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path / "cache"))
    teacher = save_tiny_classifier(tiny_model_dir, tmp_path / "teacher")
    texts, labels = ["happy day", "awful rage", "quiet river"], ["a", "b", "c"]
    first, folder = teacher_cache.cached_teacher_logits(teacher, texts, labels, 32)
    [chunk] = folder.glob("*.safetensors")
    whole = chunk.read_bytes()
    stored = {name: tensor.clone() for name, tensor in load_file(str(chunk)).items()}  # not a view of the file
    for damage in (lambda: chunk.write_bytes(whole[:len(whole) // 2]),
                   lambda: save_file({"logits": stored["logits"][:2].contiguous(), "labels": stored["labels"]},
                                     str(chunk))):
        damage()
        again, _ = teacher_cache.cached_teacher_logits(teacher, texts, labels, 32)
        assert torch.equal(again, first)
        assert chunk.read_bytes() == whole  # labelled again and rewritten whole
    nan = stored["logits"].clone()
    nan[1, 0] = float("nan")
    save_file({"logits": nan, "labels": stored["labels"]}, str(chunk))
    with pytest.raises(UsageError, match="NaN or infinite logits for 1 training texts"):
        teacher_cache.cached_teacher_logits(teacher, texts, labels, 32)


# --- silently wrong: input read as something else ------------------------------------------------------

def test_a_utf16_file_is_named_as_utf16_never_read_as_latin1(tmp_path):
    """The not-utf-8 error suggested --encoding latin-1; on a UTF-16 file that read every character with
    a NUL beside it and classified those texts, exit 0."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.files import iter_lines, read_lines

    path = tmp_path / "tweets.txt"
    path.write_bytes("what a day\nso angry\n".encode("utf-16"))
    for encoding in ("utf-8", "latin-1"):
        with pytest.raises(UsageError, match="UTF-16 byte-order mark.*pass --encoding utf-16"):
            read_lines(path, encoding)
        with pytest.raises(UsageError, match="pass --encoding utf-16"):
            list(iter_lines(path, encoding))
    assert read_lines(path, "utf-16") == ["what a day", "so angry"]


def test_a_quote_that_never_closes_is_refused_not_merged_into_one_text(tmp_path):
    """csv read every row after an unclosed quote into that one text: 3 tweets, 1 prediction, exit 0."""
    from tweetcls.core.errors import UsageError
    from tweetcls.datamodules.files import iter_table, read_table

    path = tmp_path / "tweets.csv"
    path.write_text('text\n"quoted start and no end\nsecond tweet\nthird tweet\n')
    with pytest.raises(UsageError, match="never closed"):
        read_table(path, ",")
    with pytest.raises(UsageError, match="never closed"):
        list(iter_table(path, ","))
    path.write_text('text\n"a ""quoted"" word, and a comma"\nhe said "hi"\n')  # well-formed quoting still reads
    assert [r["text"] for r in read_table(path, ",")] == ['a "quoted" word, and a comma', 'he said "hi"']


def test_predict_reads_a_json_number_as_its_text(run_dir, tmp_path, capsys):
    """{"text": 5} was answered as an empty text (no label); training reads it as the text "5"."""
    from tweetcls.commands import predict

    path = tmp_path / "in.jsonl"
    path.write_text('{"text": 5}\n{"text": null}\n')
    out = tmp_path / "out.csv"
    assert predict.main([str(run_dir), "--input", str(path), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert (rows[0]["text"], rows[1]["text"]) == ("5", "")
    assert rows[0]["label"] in ("joy", "anger", "calm") and rows[1]["label"] == ""
    capsys.readouterr()
    path.write_text('{"text": ["a list"]}\n')
    assert predict.main([str(run_dir), "--input", str(path), "--output", str(tmp_path / "o2.csv")]) == 2
    assert "list in column 'text'" in _one_line(capsys)


# --- YAML: options files say what they mean once -------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("lr: 1.0e-3\nlr: 1.0e-2\n", "names 'lr' twice"),  # trained at 1e-2
    ("max_epochs: 1\nmax-epochs: 7\n", "names 'max_epochs' twice"),  # trained 7 epochs
    ("batch_size: ~\n", "batch_size is null"),  # TypeError from the data module
    ("dataset: null\n", "dataset is null"),  # AttributeError from the dataset table
    ("max_epochs: null\n", "max_epochs is null"),  # Lightning's default: up to 1000 epochs
])
def test_a_config_file_key_written_twice_or_null_is_one_line(tmp_path, text, words):
    from tweetcls.core.errors import UsageError
    from tweetcls.training.options import parse_args

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=words):
        parse_args(["--config", str(path)])


def test_a_config_file_may_leave_an_optional_option_null(tmp_path):
    from tweetcls.training.options import parse_args

    path = tmp_path / "c.yaml"
    path.write_text("max_train_samples: null\nteacher: null\n")
    assert parse_args(["--config", str(path)]).max_train_samples is None


@pytest.mark.parametrize("text, words", [
    ("lr: {type: float, low: 1.0e-4, high: 1.0e-2, lgo: true}\n", "does not take lgo"),  # searched linearly
    ("lr: {type: float, low: 1.0e-4, high: 1.0e-2, step: 1.0e-3}\n", "does not take step"),  # step dropped
    ("lr: {type: float, low: 1.0e-4, high: 1.0e-2}\nlr: {type: float, low: 0.5, high: 0.9}\n", "names 'lr' twice"),
])
def test_a_search_space_entry_tune_would_read_otherwise_is_refused(tmp_path, text, words):
    from tweetcls.core.errors import UsageError
    from tweetcls.training.options import build_parser

    from tweetcls.search_space import load_space

    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=words):
        load_space(path, {a.dest: a for a in build_parser()._actions})


def test_an_option_fixed_for_the_study_and_searched_is_refused(tiny_model_dir, tiny_csv, tmp_path, capsys):
    """`--max-epochs 1` beside a space that searches max_epochs: every trial trained 2 to 5 epochs."""
    from tweetcls.commands import tune

    space = tmp_path / "space.yaml"
    space.write_text("max_epochs: {type: int, low: 2, high: 5}\nlr: {type: float, low: 1.0e-4, high: 1.0e-2}\n")
    config = tmp_path / "fixed.yaml"
    config.write_text("lr: 1.0e-3\n")
    base = ["--trials", "1", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir",
            str(tmp_path), "--space", str(space)]
    assert tune.main([*base, "--max-epochs", "1"]) == 2
    assert "--max-epochs fixed for the study but also searched" in _one_line(capsys)
    assert tune.main([*base, "--config", str(config)]) == 2
    assert "--lr fixed for the study but also searched" in _one_line(capsys)
    assert not (tmp_path / "tiny-lora" / "trials").exists()


def test_the_best_folder_is_retrained_when_another_trial_became_the_best(run_dir):
    """A study continued with more --trials found a better trial: best.yaml named it, best/ kept the old
    trial's retrain and test score, and nothing said so."""
    from tweetcls.commands.tune import retrained_best
    from tweetcls.training.options import build_parser

    actions = {a.dest: a for a in build_parser()._actions}
    assert retrained_best(run_dir, {"lora_r": 8, "lr": 5e-3}, actions)  # the run trained r=8 at 5e-3
    assert not retrained_best(run_dir, {"lora_r": 4, "lr": 5e-3}, actions)
    assert retrained_best(run_dir, {"lora_alpha": 16}, actions)  # an int choice against the recorded 16.0
    assert not retrained_best(run_dir.parent / "nothing", {"lora_r": 8}, actions)


# --- the Python API -------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, words", [
    (lambda P, load_run, run: P.from_run(None), "target must be a run directory.*got NoneType"),
    (lambda P, load_run, run: P.from_run(run.as_posix().encode()), "got bytes"),
    (lambda P, load_run, run: load_run(3), "target must be a run directory.*got int"),
    (lambda P, load_run, run: P.from_run(run, threads="2"), "threads must be an int >= 1"),
    (lambda P, load_run, run: P.from_run(run, threads=0), "threads must be an int >= 1"),
])
def test_the_python_api_names_a_wrong_argument(run_dir, call, words):
    """pathlib's "expected str, bytes or os.PathLike object, not NoneType" and torch's "set_num_threads
    expects an int, but got str" came from frames below the call; threads=0 was ignored."""
    from tweetcls import Predictor, load_run

    with pytest.raises((TypeError, ValueError), match=words):
        call(Predictor, load_run, run_dir)

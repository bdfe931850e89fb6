"""Issue 46, a hostile review of round 8's tests (branch i46e): realistic bugs planted one at a time in
the new code survived tests/test_reliability_round8.py and the existing suites; each test here was red
with its bug in (named in its docstring) and is green without it."""

from __future__ import annotations

import signal
import sys

import pytest
from tweetcls.core.errors import Interrupted, UsageError
from tweetcls.training import options as train_options

LATIN = ["café olé", "naïve tweet", "crème brûlée"]


# --- a --config file's own config: key ----------------------------------------------------------------

def test_a_config_key_beside_some_record_keys_is_still_refused(tmp_path):
    """Bug: the saved-record exemption took ANY of output_dir/run_name/resume/precision (``&``) for
    ALL of them (``<=``): a hand-written file with an output_dir: had its config: ignored again."""
    other = tmp_path / "other.yaml"
    other.write_text("max_epochs: 9\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"output_dir: {tmp_path / 'runs'}\nprecision: 32-true\nconfig: {other}\n")
    with pytest.raises(UsageError, match=f"config: {other} is not read"):
        train_options.parse_args(["--config", str(config)])


def test_a_config_key_naming_the_file_itself_by_another_spelling_passes(tmp_path, monkeypatch):
    """Bug: the file itself compared as text, not as a resolved path: ``config: ./c.yaml`` inside
    c.yaml (or its absolute name, given --config c.yaml) was refused as another file."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.yaml"
    for itself in ("./c.yaml", str(config), f"{tmp_path}/sub/../c.yaml"):
        config.write_text(f"lr: 0.002\nconfig: {itself}\n")
        assert train_options.parse_args(["--config", "c.yaml"]).lr == 0.002, itself


# --- pretrain.py --encoding reaches the corpus, a data file's too --------------------------------------

def _latin_csv(path):
    rows = "".join(f"{text} {i},{'ab'[i % 2]}\n" for i in range(30) for text in LATIN[:1])
    path.write_bytes(("text,label\n" + rows).encode("latin-1"))
    return path


def test_a_data_file_corpus_is_read_in_the_encoding_given(tmp_path):
    """Bug: build_corpus's cache of datasets (``loaded``) read a data file without ``encoding``: a
    latin-1 .csv in --mlm-data was refused as not utf-8 (only a .txt was tested)."""
    from tweetcls.datamodules.corpus import build_corpus

    csv = _latin_csv(tmp_path / "latin.csv")
    texts = build_corpus([str(csv)], tmp_path, encoding="latin-1").texts
    assert texts and all(t.startswith("café olé ") for t in texts), texts[:3]


def test_pretrain_and_save_reads_the_corpus_in_its_encoding(tiny_model_dir, tmp_path, monkeypatch):
    """Bug: pretrain_and_save called build_corpus without args.encoding: parse_args kept
    --encoding latin-1 (the only thing tested) and the run still read the corpus as utf-8."""
    import tweetcls.mlm.data
    from tweetcls.commands import pretrain

    corpus = tmp_path / "latin.txt"
    corpus.write_bytes(("\n".join(LATIN) + "\n").encode("latin-1"))
    data = tmp_path / "data"
    data.mkdir()

    class Reached(Exception):
        pass

    def stop(texts, *a, **k):
        raise Reached(texts)

    monkeypatch.setattr(tweetcls.mlm.data, "MaskedLMDataModule", stop)
    settings = pretrain.parse_args(["--model", str(tiny_model_dir), "--mlm-data", str(corpus), "--encoding", "latin-1",
                                    "--data-dir", str(data), "--output-dir", str(tmp_path / "out")])
    with pytest.raises(Reached) as reached:
        pretrain.pretrain_and_save(settings)
    assert reached.value.args[0] == LATIN


def test_a_distill_run_reads_its_transfer_file_in_its_encoding(tiny_model_dir, tmp_path, monkeypatch):
    """Bug: train_and_save did not pass args.encoding on to prepare_distillation_data: train.py
    --transfer-data latin.txt --encoding latin-1 was refused as not utf-8 (transfer_set alone was
    tested)."""
    from conftest import WORDS, make_texts, save_tiny_classifier
    from tweetcls.training import pipeline

    names = dict(zip(WORDS, "abc"))  # the tiny classifier's labels
    dataset = tmp_path / "abc.csv"
    dataset.write_text("text,label\n" + "".join(f"{t},{names[label]}\n" for t, label in make_texts(60)))
    teacher = save_tiny_classifier(tiny_model_dir, tmp_path / "teacher")
    transfer = tmp_path / "transfer.txt"
    transfer.write_bytes(("\n".join(LATIN) + "\n").encode("latin-1"))

    class Reached(Exception):
        pass

    def stop(args):
        raise Reached

    monkeypatch.setattr(pipeline, "open_run_dir", stop)  # right after the distillation data is ready
    settings = train_options.parse_args(["--method", "distill", "--teacher", str(teacher), "--layers", "0",
                                         "--dataset", str(dataset), "--transfer-data", str(transfer), "--encoding",
                                         "latin-1", "--output-dir", str(tmp_path / "out"), "--run-name", "r",
                                         "--data-dir", str(tmp_path)])
    with pytest.raises(Reached):
        pipeline.train_and_save(settings)


# --- masked-LM training: the smallest corpus ------------------------------------------------------------

def test_a_corpus_of_two_texts_holds_one_out_and_trains_on_the_other(tiny_model_dir):
    """Bug (off by one): ``len(texts) <= 2`` refused a 2-text corpus, which the message itself says
    is enough ("needs at least 2")."""
    from tweetcls.core.build import load_tokenizer
    from tweetcls.mlm.data import MaskedLMDataModule

    assert MaskedLMDataModule(["one text", "another text"], load_tokenizer(tiny_model_dir), 1).heldout == 1


# --- tune.py's Ctrl-C handler: put in only over Python's own, and always taken out ---------------------

@pytest.fixture
def default_sigint():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_restores_the_handler_and_the_unraisable_hook(default_sigint, monkeypatch):
    """Bugs: __exit__ left tune's SIGINT handler (or Lightning's SIG_IGN after an interrupted fit) in
    place, or left sys.unraisablehook swallowing, for whoever calls tune.main in-process next."""
    from tweetcls.commands.tune import CtrlC

    hook = sys.unraisablehook
    with CtrlC() as ctrl_c:
        assert signal.getsignal(signal.SIGINT) == ctrl_c._handle and sys.unraisablehook == ctrl_c._unraisable
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as Lightning leaves it after a fit it stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sys.unraisablehook is hook


def test_ctrl_c_leaves_an_ignored_sigint_ignored(default_sigint):
    """Bug: installed over any handler: a tune.py started as a background job (SIGINT ignored) was
    stopped by a Ctrl-C meant for the shell's foreground job."""
    from tweetcls.commands.tune import CtrlC

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    hook = sys.unraisablehook
    with CtrlC():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and sys.unraisablehook is hook
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_ctrl_c_drops_only_its_own_unraisable_keyboard_interrupt(default_sigint, monkeypatch):
    """Bug: the hook swallowed every unraisable exception while installed: a finalizer's real error
    (or a KeyboardInterrupt before any Ctrl-C) went unreported."""
    from tweetcls.commands.tune import CtrlC

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value).__name__))

    class Raises:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    with CtrlC() as ctrl_c:
        Raises(ValueError("a finalizer's bug"))
        Raises(KeyboardInterrupt())  # no Ctrl-C came: not ours to drop
        ctrl_c.requested = True
        Raises(KeyboardInterrupt())  # ours: dropped, the flag carries it
        Raises(ValueError("still reported"))
    assert seen == ["ValueError", "KeyboardInterrupt", "ValueError"]


# --- tune.py: a trial stopped by SIGTERM ---------------------------------------------------------------

def test_a_trial_stopped_by_sigterm_says_so_with_exit_143(tiny_model_dir, tiny_csv, tmp_path, capsys, monkeypatch,
                                                           default_sigint):
    """Bug: the SIGTERM test compared the exit code with 15 (the signal) instead of 143: a SIGTERM'd
    trial was told as 'interrupted'. Only Ctrl-C (130) was tested."""
    from tweetcls.commands import tune
    from tweetcls.training import pipeline

    def stopped(args, **options):
        raise Interrupted(f"stopped by SIGTERM at step 3; continue with: python train.py --resume {args.run_name}", 143)

    monkeypatch.setattr(pipeline, "run", stopped)
    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2}\n")
    assert tune.main(["--method", "lora", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--trials", "2",
                      "--space", str(space), "--output-dir", str(tmp_path), "--study-name", "s"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "tune.py: stopped by SIGTERM during trial 0; run the same tune.py command again to go on with the study")


# --- atomic_directory: the host in a temporary folder's name -------------------------------------------

def test_hosts_told_apart_only_by_their_domain_keep_their_temporaries(tmp_path, monkeypatch):
    """Bug: this_host() cut the name at its first dot (the "short" host name): node1.cluster-a removed
    node1.cluster-b's live temporary folder on their shared file system when its PID was free here."""
    import socket

    from tweetcls.core import atomic
    from tweetcls.core.atomic import atomic_directory, this_host

    monkeypatch.setattr(socket, "gethostname", lambda: "node1.cluster-a")
    assert this_host() == "node1.cluster-a"
    theirs = tmp_path / ".onnx.tmp-node1.cluster-b-4242"
    mine = tmp_path / ".onnx.tmp-node1.cluster-a-4242"
    theirs.mkdir()
    mine.mkdir()
    monkeypatch.setattr(atomic, "_alive", lambda pid: False)
    with atomic_directory(tmp_path / "onnx", "export") as folder:
        assert folder.name.startswith(".onnx.tmp-node1.cluster-a-")
    assert theirs.is_dir() and not mine.exists()


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


# --- tune.py: a space searching an option whose companion is off (a real defect) -------------------------

@pytest.mark.parametrize("searched, words", [
    ("hidden_weight: {type: float, low: 0.5, high: 2.0}",
     ("searches hidden_weight, the weight of the hidden-state loss, which is off (--hidden-loss none); add "
      "--hidden-loss cosine (or mse), or pass a --space without it")),
    ("transfer_samples: {type: int, low: 10, high: 50}",
     ("searches transfer_samples, the limit of the --transfer-data texts, and none were given; add --transfer-data, "
      "or pass a --space without it")),
])
def test_a_space_searching_an_option_whose_companion_is_off_is_refused_before_any_trial(
        tiny_model_dir, tmp_path, capsys, searched, words):
    """hidden_weight searched with --hidden-loss none: the space passed, trial 0 was refused by its
    settings (Optuna's 'Trial 0 failed' and traceback, a failed trial in a new study folder, and the
    advice 'drop --hidden-weight', which the command line does not hold)."""
    from conftest import WORDS, make_texts, save_tiny_classifier
    from tweetcls.commands import tune

    names = dict(zip(WORDS, "abc"))
    dataset = tmp_path / "abc.csv"
    dataset.write_text("text,label\n" + "".join(f"{t},{names[label]}\n" for t, label in make_texts(30)))
    teacher = save_tiny_classifier(tiny_model_dir, tmp_path / "teacher")
    space = tmp_path / "space.yaml"
    space.write_text(f"kd_alpha: {{type: float, low: 0.1, high: 0.9}}\n{searched}\n")
    common = ["--method", "distill", "--teacher", str(teacher), "--layers", "0", "--dataset", str(dataset),
              "--trials", "1", "--space", str(space), "--output-dir", str(tmp_path / "out")]
    capsys.readouterr()  # the teacher's saving
    assert tune.main(common) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"tune.py: error: {space} {words}"]
    assert not (tmp_path / "out").exists()
    from tweetcls.commands.tune import check_searched_dependents
    from tweetcls.training import options

    on = options.parse_args(["--method", "distill", "--teacher", str(teacher), "--layers", "0", "--hidden-loss", "mse",
                             "--transfer-data", "pool"])
    check_searched_dependents({"hidden_weight": {}, "transfer_samples": {}}, on, space)  # companions on: searched


def test_a_run_saved_with_another_methods_value_still_resumes(tiny_model_dir, tiny_csv, tmp_path):
    """A run saved before the method-option check, whose config.yaml holds `lora_r: 16` under
    `--method full` (ignored as it trained): refusing it on --resume left no way to finish it."""
    import yaml

    from tweetcls.training.options import parse_args

    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    saved = {"method": "full", "model": str(tiny_model_dir), "dataset": str(tiny_csv), "lora_r": 16,
             "output_dir": str(tmp_path / "runs"), "run_name": "old"}
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    assert parse_args(["--resume", str(run)]).lora_r == 16
    with pytest.raises(Exception, match="lora-r 16 belongs to"):  # a new run with it is still refused
        parse_args(["--method", "full", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--lora-r", "16"])

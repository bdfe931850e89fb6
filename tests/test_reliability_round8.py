"""Issue 46, the leftovers of hostile pass 5 (/root/i46d-patches/hostile5.md: H7, H16, Y12, Y13,
T11, M3, M5, and two by reading: serve's duplicate upload ids, atomic_directory's temporaries on a
shared folder): each test was red with its bug put back."""

from __future__ import annotations

import os

import pytest
import yaml

from tweetcls.core.errors import ParameterError, UsageError
from tweetcls.training import options as train_options

# --- 1. --hidden-weight without --hidden-loss (H16) -----------------------------------------------

DISTILL = ["--method", "distill", "--teacher", "runs/teacher", "--layers", "odd"]


def test_a_hidden_weight_without_a_hidden_loss_is_refused():
    with pytest.raises(UsageError, match=r"--hidden-weight 5 weighs the hidden-state loss, which is off; add "
                                         r"--hidden-loss"):
        train_options.parse_args([*DISTILL, "--hidden-weight", "5"])
    with pytest.raises(UsageError, match="--transfer-samples 30 limits the --transfer-data texts"):
        train_options.parse_args([*DISTILL, "--transfer-samples", "30"])
    # with the loss on, or at its default, the weight passes
    assert train_options.parse_args([*DISTILL, "--hidden-weight", "5", "--hidden-loss", "mse"]).hidden_weight == 5
    assert train_options.parse_args([*DISTILL, "--hidden-weight", "1"]).hidden_weight == 1


def test_the_command_says_it_in_one_line_with_exit_2(capsys):
    from tweetcls.commands import train

    assert train.main([*DISTILL, "--hidden-weight", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: --hidden-weight 0.5 weighs"), err


# --- 2. another method's options, and config: inside a --config (Y12, Y13) --------------------------

@pytest.mark.parametrize("argv, yaml_text, message", [
    (["--method", "lora", "--kd-alpha", "0.9"], "method: lora\nkd_alpha: 0.9\n",
     "--kd-alpha 0.9 belongs to --method distill or distill-lora; --method lora does not read it"),
    (["--method", "full", "--kd-temperature", "4", "--hidden-weight", "2"], "method: full\nkd-temperature: 4\nhidden_weight: 2\n",
     "--kd-temperature 4.0, --hidden-weight 2.0 belong to --method distill or distill-lora"),
    (["--method", "full", "--lora-r", "16"], "method: full\nlora_r: 16\n",
     "--lora-r 16 belongs to --method lora, qlora or distill-lora; --method full does not read it"),
    (["--method", "teacher", "--lora-rslora"], "method: teacher\nlora_rslora: true\n", "--lora-rslora belongs to"),
    ([*DISTILL, "--lora-alpha", "32"], "method: distill\nteacher: t\nlayers: odd\nlora_alpha: 32\n",
     "--lora-alpha 32.0 belongs to --method lora, qlora or distill-lora"),
])
def test_another_methods_option_is_refused_by_flag_and_by_yaml_alike(tmp_path, argv, yaml_text, message):
    with pytest.raises(UsageError, match="^" + message.replace(".", r"\.")):
        train_options.parse_args(argv)
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    with pytest.raises(UsageError, match="^" + message.replace(".", r"\.")):
        train_options.parse_args(["--config", str(config)])


def test_another_methods_option_at_its_default_passes(tmp_path):
    """What a run's config.yaml holds for the options its method does not read: their defaults."""
    config = tmp_path / "c.yaml"
    config.write_text("method: full\nkd_alpha: 0.5\nlora_r: 8\nhidden_weight: 1\nteacher: null\n")
    assert train_options.parse_args(["--config", str(config)]).method == "full"


def test_a_config_key_inside_a_config_file_is_refused(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("max_epochs: 9\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"lr: 0.001\nconfig: {other}\n")
    with pytest.raises(UsageError, match=f"config file {config}: config: {other} is not read .*pass --config {other}"):
        train_options.parse_args(["--config", str(config)])
    for harmless in ("null", str(config)):  # nothing, or the file itself
        config.write_text(f"lr: 0.001\nconfig: {harmless}\n")
        assert train_options.parse_args(["--config", str(config)]).lr == 0.001


METHOD_ARGV = {
    "full": ["--method", "full"],
    "lora": ["--method", "lora", "--lora-r", "4"],
    "qlora": ["--method", "qlora"],
    "teacher": ["--method", "teacher"],
    "distill": [*DISTILL, "--hidden-loss", "cosine", "--hidden-weight", "2", "--kd-alpha", "0.7"],
    "distill-lora": ["--method", "distill-lora", "--teacher", "runs/teacher", "--student", "minilm-l6",
                     "--transfer-data", "pool", "--transfer-samples", "100"],
}


@pytest.mark.parametrize("method", train_options.METHODS)
def test_a_runs_saved_config_reads_back_by_config_and_by_resume(method, tmp_path, monkeypatch):
    """config.yaml holds every option with its default (the other methods' too) and where its values
    came from (``config:``): ``--config`` and ``--resume`` accept it as it is, for every method."""
    from tweetcls.training import pipeline

    assert set(METHOD_ARGV) == set(train_options.METHODS)
    started_from = tmp_path / "start.yaml"
    started_from.write_text("max_epochs: 2\n")
    monkeypatch.setenv(pipeline.RUN_DIR_ENV, "")  # open_run_dir sets it; restored after the test
    settings = train_options.parse_args([*METHOD_ARGV[method], "--config", str(started_from),
                                         "--output-dir", str(tmp_path / "runs"), "--run-name", method])
    run_dir, _ = pipeline.open_run_dir(settings)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["config"] == str(started_from) and saved["method"] == method
    again = train_options.parse_args(["--config", str(run_dir / "config.yaml"), "--run-name", "again"])
    resumed = train_options.parse_args(["--resume", str(run_dir)])
    for read in (again, resumed):
        assert {k: v for k, v in read.as_dict().items() if k not in ("config", "run_name", "resume")} == \
               {k: v for k, v in settings.as_dict().items() if k not in ("config", "run_name", "resume")}


# --- 4. --layers out of order (H7) ----------------------------------------------------------------

def test_layers_out_of_order_are_refused_naming_the_sorted_list():
    from tweetcls.distill.layer_copy import select_layers

    assert select_layers([0, 1], 2) == [0, 1]
    with pytest.raises(ParameterError, match=r"^layers must list the teacher's layers in increasing order .*: 1,0; use 0,1$"):
        select_layers([1, 0], 2)
    with pytest.raises(ParameterError, match="use 0,3,6,9$"):
        select_layers([0, 6, 3, 9], 12)
    with pytest.raises(ParameterError, match="twice"):  # duplicates keep their own line
        select_layers([1, 1], 2)


# --- 5. pretrain.py --encoding, and --heldout's range (M3, M5, M13) ---------------------------------

def test_pretrain_reads_its_corpus_in_the_encoding_given(tmp_path):
    from tweetcls.commands import pretrain
    from tweetcls.datamodules.corpus import build_corpus

    corpus = tmp_path / "latin.txt"
    corpus.write_bytes("café olé\nnaïve tweet\n".encode("latin-1"))
    with pytest.raises(UsageError, match="is not utf-8 .* --encoding"):
        build_corpus([str(corpus)], tmp_path)
    assert build_corpus([str(corpus)], tmp_path, encoding="latin-1").texts == ["café olé", "naïve tweet"]
    settings = pretrain.parse_args(["--mlm-data", str(corpus), "--encoding", "latin-1", "--output-dir", str(tmp_path)])
    assert settings.encoding == "latin-1" and pretrain.parse_args([]).encoding == "utf-8"
    with pytest.raises(UsageError, match="--encoding must be a text encoding"):
        pretrain.parse_args(["--encoding", "utf-9"])


@pytest.mark.parametrize("texts, heldout, message", [
    (40, 40, r"^heldout must be from 1 to 39 \(the corpus has 40 texts and at least one is left to train on\), got 40$"),
    (3, 2000, r"^heldout must be from 1 to 2 .*, got 2000$"),
    (1, 1, r"^the corpus has 1 text\(s\); masked-LM training needs at least 2"),
])
def test_the_heldout_range_says_what_it_accepts(texts, heldout, message):
    from transformers import AutoTokenizer

    from tweetcls.mlm.data import MaskedLMDataModule

    with pytest.raises(UsageError, match=message):
        MaskedLMDataModule([f"text {i}" for i in range(texts)], AutoTokenizer, heldout)


def test_train_reads_a_transfer_file_in_its_encoding_too(tmp_path):
    """train.py's error for a transfer .txt named --encoding, which did not reach that file."""
    from tweetcls.distill.transfer_set import transfer_set

    texts = tmp_path / "transfer.txt"
    texts.write_bytes("café olé\nnaïve tweet\n".encode("latin-1"))
    with pytest.raises(UsageError, match="--encoding"):
        transfer_set(str(texts), tmp_path, None, {"train": ["x"]})
    assert sorted(transfer_set(str(texts), tmp_path, None, {"train": ["x"]}, encoding="latin-1").texts) == \
           ["café olé", "naïve tweet"]


# --- 6. serve.py: two rows of one id in an upload (predict.py refused them; the service did not) ------

@pytest.fixture(scope="module")
def tiny_classifier(tiny_model_dir, tmp_path_factory):
    from conftest import save_tiny_classifier

    return save_tiny_classifier(tiny_model_dir, tmp_path_factory.mktemp("round8") / "model")


@pytest.fixture(scope="module")
def client(tiny_classifier):
    from fastapi.testclient import TestClient

    from tweetcls import Predictor
    from tweetcls.service import Limits, create_app

    with TestClient(create_app(Predictor.from_run(tiny_classifier), {}, Limits())) as c:
        yield c


@pytest.mark.parametrize("name, body, error", [
    ("a.csv", "id,text\nx,happy\ny,sad\nx,calm\n", "rows 1 and 3 share the id 'x' (column 'id'); make the ids unique"),
    ("a.tsv", "text\tid\nhappy\t\nsad\t\n", "rows 1 and 2 both have a blank id (column 'id'); make the ids unique"),
])
def test_an_upload_with_a_repeated_id_is_refused_as_predict_refuses_it(client, tiny_classifier, tmp_path, capsys,
                                                                        name, body, error):
    from tweetcls.commands import predict

    response = client.post("/predict/file", files={"file": (name, body.encode(), "text/plain")})
    assert response.status_code == 422 and response.json()["error"] == f"{name}: {error}", response.text
    unique = client.post("/predict/file", files={"file": ("a.csv", b"id,text\nx,happy\ny,sad\n,calm\n", "text/plain")})
    assert unique.status_code == 200 and unique.text.splitlines()[3].startswith("3,calm,")  # one blank id: its row
    (tmp_path / name).write_text(body)
    assert predict.main([str(tiny_classifier), "--input", str(tmp_path / name)]) == 2
    line = capsys.readouterr().err.strip()
    assert line == f"predict.py: error: {tmp_path / name}: {error}, or name a column of unique ids with --id-column"


# --- 7. atomic_directory's temporaries on a folder two machines share (by reading) ------------------

def _dead_pid() -> int:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_only_this_hosts_dead_writers_temporaries_are_removed(tmp_path, monkeypatch):
    """`.NAME.tmp-PID` named a PID of whichever machine wrote it: on a shared folder a write here
    removed another machine's live temporary folder when its PID was free here."""
    import socket

    from tweetcls.core import atomic
    from tweetcls.core.atomic import atomic_directory, this_host

    target, dead = tmp_path / "onnx", _dead_pid()
    monkeypatch.setattr(socket, "gethostname", lambda: "node a/1")  # sanitised into a file name
    assert this_host() == "node_a_1"
    mine = tmp_path / f".onnx.tmp-node_a_1-{dead}"
    theirs = [tmp_path / f".onnx.tmp-node-b-{dead}",  # another machine's, PID free here: maybe writing there
              tmp_path / f".onnx.tmp-node_a_1x-{dead}", tmp_path / f".onnx.tmp-x-node_a_1-{dead}",
              tmp_path / f".onnx.tmp-{dead}"]  # the old name says no machine: left alone
    for folder in [mine, *theirs]:
        folder.mkdir()
    seen = []
    monkeypatch.setattr(atomic, "_alive", lambda pid: seen.append(pid) or False)  # every PID dead here
    with atomic_directory(target, "export") as folder:
        assert folder.name == f".onnx.tmp-node_a_1-{os.getpid()}"
        (folder / "model.onnx").write_text("whole")
    assert not mine.exists() and all(folder.is_dir() for folder in theirs), sorted(p.name for p in tmp_path.iterdir())
    assert seen == [dead]  # only this host's folder's PID was asked about
    assert (target / "model.onnx").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["onnx", *(p.name for p in theirs)])


# --- 3. Ctrl-C during tune.py always ends the study (T11) -------------------------------------------

TUNE_DRIVER = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job starts with SIGINT ignored
from tweetcls.commands import tune
from tweetcls.training import pipeline

moment, argv, real = sys.argv[1], sys.argv[2:], pipeline.run


class Finalizer:
    def __del__(self):  # Ctrl-C landing here is printed as "Exception ignored" and dropped by Python
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)


def run(args, **options):
    if moment == "in a finalizer before trial 0" and args.run_name == "trial-0":
        Finalizer()
    results = real(args, **options)
    if moment == "in a finalizer after trial 0" and args.run_name == "trial-0":
        Finalizer()
    return results


pipeline.run = run
sys.exit(tune.main(argv))
"""


@pytest.mark.parametrize("moment", ["in a finalizer before trial 0", "in a finalizer after trial 0",
                                    "while trial 0 trains"])
def test_ctrl_c_ends_the_study_wherever_it_lands(moment, tiny_model_dir, tiny_csv, tmp_path):
    """A Ctrl-C that Python dropped inside a finalizer let the study run on to its end (exit 0); each
    moment now ends it with one line and exit code 130, the trials finished so far kept."""
    import signal
    import subprocess
    import sys
    import time

    import optuna

    from conftest import REPO

    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    epochs = "30" if moment == "while trial 0 trains" else "1"
    argv = ["--method", "lora", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir",
            str(tmp_path), "--trials", "3", "--space", str(space), "--batch-size", "16", "--max-epochs", epochs,
            "--patience", "0", "--study-name", "s", "--no-retrain", "--pruner", "none"]
    env = {k: v for k, v in os.environ.items() if k != "TWEETCLS_RUN_DIR"}
    child = subprocess.Popen([sys.executable, "-c", TUNE_DRIVER, moment, *argv], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if moment == "while trial 0 trains":
        checkpoints = tmp_path / "s" / "trials" / "trial-0" / "checkpoints"
        deadline = time.monotonic() + 120
        while not checkpoints.is_dir() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=240)
    finally:
        child.kill()
    lines = err.strip().splitlines()
    assert child.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert lines[-1] == ("tune.py: interrupted; finished trials are kept in the study: run the same tune.py command "
                         "again to go on with it" if moment == "in a finalizer after trial 0" else
                         "tune.py: interrupted during trial 0; run the same tune.py command again to go on with the "
                         "study"), err
    ours = [line for line in lines if line.startswith("tune.py: ")]  # (Lightning's own notes besides)
    assert len(ours) == 2 and ours[0].startswith("tune.py: study s: 0 of 3"), err  # the start, then the one line
    trials = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}").trials
    assert len(trials) == 1  # no trial started after the Ctrl-C
    assert trials[0].state.name == ("COMPLETE" if moment == "in a finalizer after trial 0" else "FAIL")


def test_pretrains_lora_options_without_lora_are_refused(tmp_path):
    from tweetcls.commands import pretrain

    with pytest.raises(UsageError, match=r"^--lora-r 4 sets the LoRA adapters, which only --lora trains"):
        pretrain.parse_args(["--lora-r", "4"])
    config = tmp_path / "c.yaml"
    config.write_text("lora_r: 4\nlora_targets: query\n")
    with pytest.raises(UsageError, match=r"^--lora-r 4, --lora-targets query set the LoRA adapters"):
        pretrain.parse_args(["--config", str(config)])
    assert pretrain.parse_args(["--config", str(config), "--lora"]).lora_r == 4


def test_a_search_space_of_another_methods_options_is_refused_before_any_trial(tiny_model_dir, tiny_csv, tmp_path,
                                                                                capsys):
    from tweetcls.commands import tune

    space = tmp_path / "space.yaml"
    space.write_text("lr: {type: float, low: 1.0e-3, high: 1.0e-2}\nkd_alpha: {type: float, low: 0.1, high: 0.9}\n")
    assert tune.main(["--method", "lora", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--trials", "1",
                      "--space", str(space), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tune.py: error: {space} searches kd_alpha, which --method lora does not read (it belongs to "
                   "--method distill or distill-lora); pass a --space without it, or choose such a method"], err
    assert not (tmp_path / "out").exists()

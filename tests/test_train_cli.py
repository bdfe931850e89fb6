"""train.py and evaluate.py end to end on a tiny random model; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tweetcls.commands import evaluate
from tweetcls.commands import train
from tweetcls.training import options as train_options
from tweetcls.training import pipeline


def train_args(model_dir, csv, out, *extra):
    return ["--model", str(model_dir), "--dataset", str(csv), "--output-dir", str(out), "--batch-size", "16",
            "--max-epochs", "2", "--no-progress-bar", "--lr", "5e-3", *extra]


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert train.main(train_args(tiny_model_dir, tiny_csv, out, "--method", "lora", "--run-name", "lora")) == 0
    return out / "lora"


def scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar TensorBoard shows for the run, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events: dict[str, list] = {}
    for path in run_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            events.setdefault(tag, []).extend(acc.Scalars(tag))
    return {tag: [e.value for e in sorted(evs, key=lambda e: (e.step, e.wall_time))] for tag, evs in events.items()}


def test_lora_run_leaves_everything_a_user_needs(lora_run):
    results = json.loads((lora_run / "results.json").read_text())
    assert results["method"] == "lora" and results["label_names"] == ["anger", "calm", "joy"]
    assert 0 < results["params_trainable"] < results["params_total"]
    assert results["fit_seconds"] > 0 and results["train_samples_per_sec"] > 0
    assert results["wall_seconds"] > results["fit_seconds"]  # the whole command: loading, scoring, saving too
    targets = results["lora"]["targets"]  # default all-linear: every encoder Linear, 2 layers x 6
    assert len(targets) == 12 and all(t.startswith("bert.encoder.layer.") for t in targets)
    assert {t.split(".", 4)[-1] for t in targets} == {"attention.self.query", "attention.self.key",
                                                      "attention.self.value", "attention.output.dense",
                                                      "intermediate.dense", "output.dense"}
    for split in ("val", "test"):
        assert {"task_metric", "accuracy", "macro_f1", "weighted_f1", "loss"} <= set(results[split])
    assert results["environment"]["packages"]["torch"].startswith("2.")
    assert results["config"]["lr"] == 5e-3
    assert (lora_run / "adapter" / "adapter_model.safetensors").is_file()
    ckpts = list((lora_run / "checkpoints").glob("best-*.ckpt"))
    assert len(ckpts) == 1
    state = torch.load(ckpts[0], map_location="cpu", weights_only=False)["state_dict"]
    assert state and all(".lora_" in k or "classifier" in k or "pooler" in k for k in state)  # adapter-only


def test_saved_model_is_merged_and_reproduces_test_metrics(lora_run, capsys):
    model = AutoModelForSequenceClassification.from_pretrained(lora_run / "model")
    assert model.config.id2label == {0: "anger", 1: "calm", 2: "joy"}
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert evaluate.main([str(lora_run)]) == 0
    results = json.loads((lora_run / "results.json").read_text())
    evaluated = json.loads((lora_run / "eval-tiny-test.json").read_text())
    assert evaluated["metrics"]["task_metric"] == pytest.approx(results["test"]["task_metric"], abs=1e-6)
    assert "macro_f1" in capsys.readouterr().out


def event_accumulators(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path), size_guidance={"images": 0, "tensors": 0})
        acc.Reload()
        yield acc


def test_tensorboard_has_params_time_and_final_metrics_once(lora_run):
    values = scalars(lora_run)
    results = json.loads((lora_run / "results.json").read_text())
    # params/* and time/* too are levels, step 0 to the last step, of results.json's numbers (one point was a dot)
    assert values["params/trainable"] == [results["params_trainable"]] * 2
    assert values["params/total"] == [results["params_total"]] * 2
    assert values["params/trainable_pct"] == [pytest.approx(results["trainable_pct"])] * 2
    assert values["time/fit_seconds"] == [pytest.approx(results["fit_seconds"])] * 2
    assert values["time/train_step_seconds"] == [pytest.approx(results["train_step_seconds"])] * 2
    assert values["time/train_samples_per_sec"] == [pytest.approx(results["train_samples_per_sec"])] * 2
    assert any(tag.startswith("lr-") for tag in values)
    assert "train/loss_step" in values and "val/task_metric" in values
    assert "epoch" not in values  # a counter drawn as a curve, smoothed into fractions
    # a final metric is the value itself at step 0 and the last step: no placeholder for smoothing to draw a
    # ramp from, and two points so that TensorBoard's outlier scaling keeps it on the chart (tests/test_review.py)
    finals = {tag: v for tag, v in values.items() if tag.startswith("hp/")}
    assert len(finals) == 5 and all(len(v) == 2 for v in finals.values()), finals
    assert finals["hp/test_task_metric"] == [pytest.approx(results["test"]["task_metric"])] * 2
    assert finals["hp/val_task_metric"] == [pytest.approx(results["val"]["task_metric"])] * 2
    assert finals["hp/cpu_latency_ms"] == [pytest.approx(results["inference"]["latency_p50_ms"])] * 2


def test_hparams_open_with_method_model_and_dataset_and_leave_paths_out(lora_run):
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    experiments = []
    for acc in event_accumulators(lora_run):
        try:
            content = acc.PluginTagToContent("hparams")
        except KeyError:  # validate/test write event files of their own, without hparams
            continue
        if "_hparams_/experiment" in content:
            experiments.append(HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment)
    assert len(experiments) == 1  # written once, at the end
    infos = sorted(experiments[0].hparam_infos, key=lambda h: h.name)  # TensorBoard's order: by name
    # four columns fit HPARAMS' table at 1280 px; TensorBoard shows the first 5 hparams and 5 metrics
    assert [h.display_name for h in infos] == ["run", "lr, epochs, seed", "data, precision"]
    assert [m.display_name for m in experiments[0].metric_infos] == ["test metric"]
    results = json.loads((lora_run / "results.json").read_text())
    start = next(HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
                 for content in map(safe_content, event_accumulators(lora_run))
                 if "_hparams_/session_start_info" in content)
    assert start.hparams["1_run"].string_value == f"lora {Path(results['model']).name} r=8"
    assert start.hparams["3_data"].string_value.startswith(Path(results["dataset"]).name)
    assert not any("/" in v.string_value for v in start.hparams.values())  # no paths


def safe_content(acc) -> dict:
    try:
        return acc.PluginTagToContent("hparams")
    except KeyError:
        return {}


def test_run_pictures_and_summary_in_tensorboard(lora_run):
    results = json.loads((lora_run / "results.json").read_text())
    images, texts, layouts = set(), set(), set()
    for acc in event_accumulators(lora_run):
        images |= set(acc.Tags()["images"])
        texts |= set(acc.Tags()["tensors"])
        try:
            layouts |= set(acc.PluginTagToContent("custom_scalars"))
        except KeyError:
            pass
    assert {"test/confusion_matrix", "test/per_class_f1"} <= images
    assert any(tag.startswith("summary") for tag in texts)
    assert layouts  # the review layout: train vs val loss, val task metric
    confusion = results["test"]["confusion_matrix"]
    n = len(results["label_names"])
    assert len(confusion) == n and all(len(row) == n for row in confusion)
    correct = sum(confusion[i][i] for i in range(n))
    assert correct / sum(map(sum, confusion)) == pytest.approx(results["test"]["accuracy"])


def test_full_fine_tuning_learns_the_tiny_task(tiny_model_dir, tiny_csv, tmp_path):
    # mean pooling: a from-scratch tiny encoder learns keywords reliably that way, while its
    # [CLS] route fails for some seeds whatever the dropout implementation
    assert train.main(train_args(tiny_model_dir, tiny_csv, tmp_path, "--method", "full", "--run-name", "full",
                                 "--max-epochs", "6", "--lr", "3e-3", "--pooling", "mean")) == 0
    results = json.loads((tmp_path / "full" / "results.json").read_text())
    assert results["params_trainable"] == results["params_total"]
    assert results["test"]["accuracy"] > 0.6  # keywords give the label away; chance is 1/3
    assert not (tmp_path / "full" / "adapter").exists()


def test_config_file_sets_defaults_and_flags_win(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("method: full\nweight-decay: 0.05\nmax_epochs: 7\n")
    args = train_options.parse_args(["--config", str(config), "--max-epochs", "2"])
    assert (args.method, args.weight_decay, args.max_epochs, args.lr) == ("full", 0.05, 2, 5e-5)


def run_main(capsys, module, argv):
    code = module.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("extra, message", [
    (["--model", "no-such-model"], "cannot resolve model 'no-such-model'"),
    (["--lora-r", "0"], "--lora-r must be an integer > 0"),
    (["--lora-targets", "q_proj"], "LoRA target 'q_proj' matches no linear layer; available:"),
    (["--max-length", "0"], "--max-length must be an integer > 0"),
    (["--max-length", "100000"], "--max-length 100000 exceeds"),
    (["--dataset", "nope/nope"], "unknown dataset 'nope/nope'"),
    (["--lr", "-1"], "--lr must be a number > 0"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_model_dir, tiny_csv, tmp_path, capsys, extra, message):
    code, err = run_main(capsys, train, train_args(tiny_model_dir, tiny_csv, tmp_path, *extra))
    assert code == 2
    assert len(err) == 1 and err[0].startswith("train.py: error: ") and message in err[0], err
    assert not any(tmp_path.iterdir())  # nothing half-made left behind


def test_unknown_method_is_a_usage_error(capsys):
    assert train.main(["--method", "magic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: --method invalid choice: 'magic'"), err


def test_existing_run_is_not_overwritten(lora_run, tiny_model_dir, tiny_csv, capsys):
    before = (lora_run / "results.json").read_text()
    code, err = run_main(capsys, train, train_args(tiny_model_dir, tiny_csv, lora_run.parent, "--run-name", "lora"))
    assert code == 2 and "already exists" in err[0] and "--overwrite" in err[0]
    assert (lora_run / "results.json").read_text() == before


def test_evaluate_on_a_directory_without_a_run(tmp_path, capsys):
    code, err = run_main(capsys, evaluate, [str(tmp_path)])
    assert code == 2 and err == [f"evaluate.py: error: {tmp_path} holds no run (results.json), adapter "
                                 "(adapter_config.json), int8 variant (quantization.json) or saved model (config.json)"]


@pytest.mark.parametrize("config", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(config):
    import yaml

    args = train_options.parse_args(["--config", str(config)])
    for key, value in yaml.safe_load(config.read_text()).items():
        assert getattr(args, key.replace("-", "_")) == value


@pytest.mark.parametrize("content, extra, message", [
    ("text,label\ncaf\u00e9 au lait,0\n".encode("latin-1"), [], "is not utf-8 (byte 14); pass its encoding, e.g. --encoding"),
    (b"tweet,label\nhello,0\n", [], "column 'text' not in"),
    (b"text,label\nhello,0\n", ["--label-column", "sentiment"], "column 'sentiment' not in"),
    (b"text,label\n ,0\n\t,1\n", [], "has no non-empty texts"),
])
def test_bad_data_file_is_one_line_and_exit_2(tiny_model_dir, tmp_path, capsys, content, extra, message):
    data = tmp_path / "bad.csv"
    data.write_bytes(content)
    code, err = run_main(capsys, train, train_args(tiny_model_dir, data, tmp_path / "runs", *extra))
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()


def test_a_relative_output_dir_works(tiny_model_dir, tiny_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train.main(train_args(tiny_model_dir, tiny_csv, "runs/sub", "--run-name", "rel", "--max-epochs", "1")) == 0
    results = json.loads((tmp_path / "runs" / "sub" / "rel" / "results.json").read_text())
    assert (tmp_path / "runs" / "sub" / "rel" / results["best_checkpoint"]).is_file()


def test_evaluate_refuses_a_dataset_with_other_labels_of_the_same_count(lora_run, tmp_path, capsys):
    import csv

    other = tmp_path / "other.csv"  # three labels like the run's (anger, calm, joy), but other ones
    with open(other, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([(f"some words {i}", ["red", "green", "blue"][i % 3]) for i in range(60)])
    code, err = run_main(capsys, evaluate, [str(lora_run), "--dataset", str(other)])
    assert code == 2 and len(err) == 1, err
    assert "was trained on labels ['anger', 'calm', 'joy']" in err[0] and "['blue', 'green', 'red']" in err[0]
    # the same refusal for the run's model/ folder given on its own
    code, err = run_main(capsys, evaluate, [str(lora_run / "model"), "--dataset", str(other)])
    assert code == 2 and "was trained on labels ['anger', 'calm', 'joy']" in err[0], err


def test_a_model_folder_without_tokenizer_files_is_refused(lora_run, tiny_csv, tmp_path, capsys):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(lora_run / "model" / name, bare / name)
    code, err = run_main(capsys, evaluate, [str(bare), "--dataset", str(tiny_csv)])
    assert code == 2 and len(err) == 1 and f"{bare} has no tokenizer files" in err[0], err
    code, err = run_main(capsys, train, train_args(bare, tiny_csv, tmp_path / "runs", "--run-name", "r"))
    assert code == 2 and len(err) == 1 and f"{bare} has no tokenizer files" in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("interval, validations", [(1.0, 3), (0.5, 6), (0.25, 12), (0.3, 10)])
def test_patience_stays_in_epochs_when_validating_within_an_epoch(tiny_model_dir, tiny_csv, tmp_path,
                                                                  interval, validations):
    from lightning.pytorch.callbacks import EarlyStopping

    args = train_options.parse_args(["--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--patience", "3",
                             "--val-check-interval", str(interval)])
    trainer, *_ = pipeline.make_trainer(args, tmp_path / "run", None, val_check_interval=interval)
    (stopper,) = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert stopper.patience == validations and trainer.val_check_interval == interval

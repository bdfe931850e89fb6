"""tweetcls.Predictor and predict.py: every saved form and backend, the same answers in input
order, empty texts kept in place, files in and out, abstaining, bad input as one line."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from tweetcls.commands import predict
from tweetcls.compress.dynamic_int8 import quantize_int8, save_int8
from conftest import REPO, make_texts, train_tiny_run
from tweetcls import Predictor, load_run
from tweetcls.loader import load_run_data
from tweetcls.core.results_file import read_results

TEXTS = [text for text, _ in make_texts(40, seed=3)]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict")
    return train_tiny_run(tiny_model_dir, tiny_csv, out, "--max-epochs", "2")


def reference_probabilities(run_dir: Path, texts: list[str]) -> torch.Tensor:
    """Straight from the saved model, one text at a time (no batching, no padding)."""
    run = load_run(run_dir)
    rows = []
    with torch.no_grad():
        for text in texts:
            logits = run.model(**run.tokenizer(text, return_tensors="pt")).logits[0]
            rows.append(torch.softmax(logits / run.temperature, dim=-1))
    return torch.stack(rows)


def test_torch_backend_matches_the_model_text_by_text_in_input_order(run_dir):
    predictor = Predictor.from_run(run_dir, batch_size=7)  # batches of sorted lengths, answers in input order
    probs = torch.from_numpy(predictor.probabilities(TEXTS))
    torch.testing.assert_close(probs, reference_probabilities(run_dir, TEXTS), rtol=0, atol=1e-5)
    results = predictor.predict(TEXTS)
    names = predictor.label_names
    assert [r["label"] for r in results] == [names[i] for i in probs.argmax(-1).tolist()]
    assert all(r["probability"] == pytest.approx(max(r["probabilities"].values())) for r in results)


def test_probabilities_are_temperature_calibrated(run_dir):
    predictor = Predictor.from_run(run_dir)
    fitted = json.loads((run_dir / "results.json").read_text())["calibration"]["temperature"]
    assert predictor.temperature == pytest.approx(fitted) and fitted != 1.0
    logits = torch.from_numpy(predictor.logits(TEXTS[:5]))
    torch.testing.assert_close(torch.from_numpy(predictor.probabilities(TEXTS[:5])), torch.softmax(logits / fitted, dim=-1))


@pytest.mark.parametrize("backend, atol", [("onnx", 1e-4), ("int8", 0.1), ("onnx-int8", 0.1)])
def test_other_backends_agree_with_torch(run_dir, backend, atol):
    base = torch.from_numpy(Predictor.from_run(run_dir).logits(TEXTS))
    other = Predictor.from_run(run_dir, backend=backend)
    assert other.backend == backend
    torch.testing.assert_close(torch.from_numpy(other.logits(TEXTS)), base, rtol=0, atol=atol)
    if backend.startswith("onnx"):  # exported once into the run and kept, with what it needs to stand alone
        folder = run_dir / "onnx"
        assert (folder / ("model-int8.onnx" if backend == "onnx-int8" else "model.onnx")).is_file()
        meta = json.loads((folder / "tweetcls.json").read_text())
        assert meta["label_names"] == other.label_names and meta["temperature"] == pytest.approx(other.temperature)
        standalone = Predictor.from_run(folder, backend=backend)  # the folder alone, no run around it
        torch.testing.assert_close(standalone.logits(TEXTS), other.logits(TEXTS), rtol=0, atol=1e-6)


def test_onnx_logits_match_torch_on_the_test_split(run_dir, tiny_csv):
    from tweetcls.datamodules.sources import load_labelled_data

    texts = list(load_labelled_data(str(tiny_csv)).splits["test"]["text"])
    torch.testing.assert_close(Predictor.from_run(run_dir, backend="onnx").logits(texts),
                               Predictor.from_run(run_dir).logits(texts), rtol=0, atol=1e-4)


def test_every_saved_form_predicts_the_same(run_dir, tmp_path):
    expected = Predictor.from_run(run_dir).predict(TEXTS)
    plain = tmp_path / "plain"
    shutil.copytree(run_dir / "model", plain)
    for form in (plain, run_dir / "adapter"):
        got = Predictor.from_run(form).predict(TEXTS)
        assert [g["label"] for g in got] == [e["label"] for e in expected], form
    int8_dir = tmp_path / "int8"
    save_int8(quantize_int8(load_run(run_dir).model), int8_dir)
    load_run(run_dir).tokenizer.save_pretrained(int8_dir)
    int8_probs = Predictor.from_run(int8_dir).probabilities(TEXTS)
    torch.testing.assert_close(int8_probs, Predictor.from_run(run_dir, backend="int8").probabilities(TEXTS))


def test_empty_texts_keep_their_rows_and_top_k_limits_the_probabilities(run_dir):
    predictor = Predictor.from_run(run_dir)
    texts = [TEXTS[0], "", "   ", TEXTS[1], "\u200b"]  # None is refused: tests/test_reliability_data.py
    results = predictor.predict(texts, top_k=2)
    assert [r["empty"] for r in results] == [False, True, True, False, True]
    assert results[1] == {"label": "", "probability": None, "probabilities": {}, "empty": True}
    alone = predictor.predict([TEXTS[0], TEXTS[1]], top_k=2)
    assert results[0] == alone[0] and results[3] == alone[1]  # not shifted by the empty rows
    assert len(results[0]["probabilities"]) == 2
    assert list(results[0]["probabilities"].values()) == sorted(results[0]["probabilities"].values(), reverse=True)


def test_min_confidence_answers_uncertain_below_it(run_dir):
    probs = torch.from_numpy(Predictor.from_run(run_dir).probabilities(TEXTS)).max(-1).values
    cut = float(probs.median())
    results = Predictor.from_run(run_dir, min_confidence=cut).predict(TEXTS)
    assert [r["label"] == "uncertain" for r in results] == (probs < cut).tolist()


def run_cli(capsys, argv) -> tuple[int, str, list[str]]:
    code = predict.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def test_cli_file_in_file_out_keeps_ids_order_and_empty_rows(run_dir, tmp_path, capsys):
    source = tmp_path / "in.csv"
    rows = [{"id": f"t{i}", "text": text} for i, text in enumerate(TEXTS[:6])]
    rows.insert(2, {"id": "blank", "text": ""})
    with open(source, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(rows)
    expected = Predictor.from_run(run_dir).predict([r["text"] for r in rows])
    for suffix in (".csv", ".jsonl"):
        out = tmp_path / f"out{suffix}"
        code, _, err = run_cli(capsys, [str(run_dir), "--input", str(source), "--output", str(out),
                                        "--no-progress-bar"])
        assert code == 0 and "7 texts in" in err[-1], err
        if suffix == ".csv":
            got = list(csv.DictReader(out.open()))
            assert [g["id"] for g in got] == [r["id"] for r in rows]
            assert [g["label"] for g in got] == [e["label"] for e in expected]
            assert got[2]["empty"] == "True" and got[2]["label"] == "" and got[2]["probability"] == ""
            assert {f"p_{n}" for n in ("anger", "calm", "joy")} <= set(got[0])
        else:
            got = [json.loads(line) for line in out.read_text().splitlines()]
            assert [g["id"] for g in got] == [r["id"] for r in rows]
            assert [g["label"] for g in got] == [e["label"] for e in expected]


def test_cli_reads_stdin_one_text_a_line(run_dir):
    done = subprocess.run([sys.executable, str(REPO / "predict.py"), str(run_dir)], input="\n".join(TEXTS[:3]),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    expected = Predictor.from_run(run_dir).predict(TEXTS[:3])
    assert [line.split("\t")[1] for line in lines] == [e["label"] for e in expected]
    assert [line.split("\t")[3] for line in lines] == TEXTS[:3]


def test_abstain_precision_is_chosen_on_val_saved_and_used(run_dir, tiny_csv, capsys):
    code, _, err = run_cli(capsys, [str(run_dir), "--abstain-precision", "0.5", TEXTS[0]])
    assert code == 0 and "abstain below" in err[0] and "on the validation split" in err[0], err
    saved = json.loads((run_dir / "abstain.json").read_text())
    assert saved["precision"] >= 0.5 and 0 < saved["coverage"] <= 1 and saved["split"] == "validation"
    card = (run_dir / "model" / "README.md").read_text()  # the model card tells users elsewhere how to abstain
    assert f"below {saved['threshold']:.4f}" in card and "for precision 0.5" in card
    try:
        predictor = Predictor.from_run(run_dir)  # later predictions (and the service) use it
        assert predictor.min_confidence == pytest.approx(saved["threshold"])
    finally:
        (run_dir / "abstain.json").unlink()


def test_the_val_chosen_abstain_threshold_is_checked_on_the_test_split(run_dir, capsys, monkeypatch):
    def spread(self, texts, progress=None):  # class 0 always, at a confidence that differs text by text
        p = torch.tensor([0.5 + zlib.crc32(t.encode()) % 500 / 1000 for t in texts])
        return torch.stack([p, 1 - p], dim=-1).numpy()

    monkeypatch.setattr(Predictor, "probabilities", spread)
    splits = load_run_data(read_results(run_dir)).splits
    try:
        code, _, err = run_cli(capsys, [str(run_dir), "--abstain-precision", "0.3", "hello"])
        saved = json.loads((run_dir / "abstain.json").read_text())
    finally:
        (run_dir / "abstain.json").unlink(missing_ok=True)
    assert code == 0 and "on the test split" in err[1], err
    held = {}
    for split in ("validation", "test"):
        confidence = torch.from_numpy(spread(None, list(splits[split]["text"])))[:, 0]
        kept = confidence >= saved["threshold"]
        correct = torch.tensor(splits[split]["label"]) == 0
        held[split] = (float(kept.double().mean()), float(correct[kept].double().mean()))
    assert held["validation"] != held["test"]  # so the check below tells the splits apart
    assert (saved["test"]["coverage"], saved["test"]["precision"]) == pytest.approx(held["test"])
    assert saved["test"]["examples"] == len(splits["test"])


@pytest.mark.parametrize("make_argv, words", [
    (lambda r, d: [str(r), "--input", str(d / "missing.csv")], "--input must be an existing file"),
    (lambda r, d: [str(r), "--input", _write(d / "x.csv", "tweet\nhello\n")], "column 'text' not in"),
    (lambda r, d: [str(r), "--input", _write(d / "x.csv", "text\ncaf\u00e9\n", "latin-1")],
     "pass its encoding, e.g. --encoding latin-1"),
    (lambda r, d: [str(d), "hello"], "holds no run"),
    (lambda r, d: [str(r), "--input", _write(d / "x.csv", "text\nhi\n"), "--output", str(d / "out.xlsx")],
     "--output must be a .csv or .jsonl file"),
    (lambda r, d: [str(r), "hi", "--top-k", "0"], "--top-k must be an integer > 0"),
    (lambda r, d: [str(r), "hi", "--min-confidence", "1.5"], "--min-confidence must be a number in (0, 1)"),
])
def test_cli_bad_input_is_one_line_and_exit_2(run_dir, tmp_path, capsys, make_argv, words):
    argv = make_argv(run_dir, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli(capsys, argv)
    assert code == 2 and len(err) == 1 and err[0].startswith("predict.py: error: ") and words in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output file, nothing half-written


def _write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_the_text_encoder_computes_what_the_transformers_tokenizer_does(run_dir, tiny_model_dir):
    from tweetcls.text_encoder import TextEncoder

    tokenizer = load_run(run_dir).tokenizer
    texts = [*TEXTS[:4], "déjà vu 🙂 #tbt @user", " ".join(TEXTS) * 20]  # the last one is truncated
    expected = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="np")
    for encoder in (TextEncoder.from_hf(tokenizer, 32), TextEncoder.from_folder(run_dir / "model", 32)):
        got = encoder.pad(encoder.encode(texts))
        assert {"input_ids", "attention_mask"} <= set(expected)
        for name in expected:
            assert (got[name] == expected[name]).all(), name


def test_predict_on_an_onnx_export_loads_neither_torch_nor_transformers(run_dir):
    import subprocess
    import sys

    assert Predictor.from_run(run_dir, backend="onnx").backend == "onnx"  # makes the export
    script = ("import json, sys, predict; code = predict.main([sys.argv[1], '--backend', 'onnx', 'hello there']); "
              "print(json.dumps([code, sorted(m for m in ('torch', 'transformers', 'datasets', 'lightning') "
              "if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", script, str(run_dir)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    code, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 0 and heavy == [], out.stderr[-2000:]

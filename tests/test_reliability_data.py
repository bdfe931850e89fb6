"""Issue 46's "silently wrong" findings: data files read as the user did not mean them, a saved
model whose head disagrees with its config, evaluate.py scoring another model than training
did, and texts with nothing visible in them. Each test here failed before its fix."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import make_texts
from tweetcls.datamodules.sources import load_labelled_data
from tweetcls.core.errors import UsageError

ROWS = [(text, label) for text, label in make_texts(30)]


def csv_file(tmp_path, lines: list[str], name: str = "d.csv", header: str = "text,label"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def good_lines(sep: str = ",") -> list[str]:
    return [f"{text}{sep}{label}" for text, label in ROWS]


# ---------------------------------------------------------------- finding 3: data files


@pytest.mark.parametrize("name, sep, bad, fix", [
    ("d.csv", ",", "so happy, love it,joy", "quote any text holding a comma"),
    ("d.tsv", "\t", "so happy\tlove it\tjoy", "quote any text holding a tab"),
    ("d.csv", ",", "a label went missing", "quote any text holding a comma"),
])
def test_a_row_with_more_or_fewer_fields_than_the_header_is_refused_with_its_row(tmp_path, name, sep, bad, fix):
    lines = good_lines(sep)
    lines[4:4] = [bad, bad]  # rows 5 and 6: named is the first, counted the other
    path = csv_file(tmp_path, lines, name, header=f"text{sep}label")
    with pytest.raises(UsageError) as err:
        load_labelled_data(str(path))
    message = str(err.value)
    assert str(path) in message and "row 5 (line 6)" in message and "1 more rows like it" in message
    assert fix in message and "\n" not in message


def test_a_quoted_comma_is_text_not_a_field(tmp_path):
    path = csv_file(tmp_path, good_lines() + ['"so happy, love it",joy'])
    data = load_labelled_data(str(path))
    texts = [t for split in data.splits.values() for t in split["text"]]
    assert "so happy, love it" in texts and len(data.label_names) == 3


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    path = csv_file(tmp_path, [f"{text},{label},{label}" for text, label in ROWS], header="text,label,label")
    with pytest.raises(UsageError, match=r"names column 'label' 2 times; rename or delete"):
        load_labelled_data(str(path))


def test_a_json_record_naming_a_field_twice_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": label}) for t, label in ROWS)
                    + '\n{"text": "hi", "label": "joy", "label": "calm"}\n')
    with pytest.raises(UsageError, match=r"line 31 names field 'label' twice"):
        load_labelled_data(str(path))


@pytest.mark.parametrize("cell", ["NaN", "nan", "None", "null", "<NA>", "N/A"])
def test_a_label_spelled_as_missing_is_refused_not_made_a_class(tmp_path, cell):
    lines = good_lines()
    lines[6] = f"so happy today,{cell}"
    with pytest.raises(UsageError, match=rf"row 7 has an empty label in column 'label' \('{cell}' means missing\)"):
        load_labelled_data(str(csv_file(tmp_path, lines)))


def test_lowercase_none_stays_a_class_as_in_tweeteval_stance(tmp_path):
    lines = [f"{text},{['none', 'favor', 'against'][i % 3]}" for i, (text, _) in enumerate(ROWS)]
    assert load_labelled_data(str(csv_file(tmp_path, lines))).label_names == ["against", "favor", "none"]


@pytest.mark.parametrize("suffix, label", [
    (".jsonl", ["joy"]), (".jsonl", {"name": "joy"}), (".json", ["joy", "calm"]), (".csv", "['joy']"),
])
def test_a_list_or_object_in_a_label_cell_is_refused(tmp_path, suffix, label):
    rows = [{"text": t, "label": lab} for t, lab in ROWS]
    rows[2]["label"] = label
    path = tmp_path / f"d{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        path.write_text("text,label\n" + "\n".join(f'{r["text"]},"{r["label"]}"' for r in rows))
    with pytest.raises(UsageError, match=r"row 3 has a list or object .* give each row one label"):
        load_labelled_data(str(path))


def test_numbers_in_a_jsonl_text_field_are_texts_not_dropped(tmp_path, caplog):
    rows = [{"text": t, "label": lab} for t, lab in ROWS] + [{"text": 123, "label": "joy"},
                                                            {"text": 4.5, "label": "calm"}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with caplog.at_level(logging.WARNING):
        data = load_labelled_data(str(path))
    texts = [t for split in data.splits.values() for t in split["text"]]
    assert "123" in texts and "4.5" in texts and len(texts) == 32 and "dropped" not in caplog.text


def test_a_list_in_a_jsonl_text_field_is_refused(tmp_path):
    rows = [{"text": t, "label": lab} for t, lab in ROWS] + [{"text": ["so", "happy"], "label": "joy"}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(UsageError, match=r"row 31 has a list in column 'text', not a text"):
        load_labelled_data(str(path))


def test_train_ends_a_misread_csv_with_one_line_and_exit_2(tiny_model_dir, tmp_path, capsys):
    from tweetcls.commands import train

    lines = good_lines()
    lines[9] = "so happy, love it,joy"
    path = csv_file(tmp_path, lines)
    code = train.main(["--model", str(tiny_model_dir), "--dataset", str(path), "--output-dir", str(tmp_path / "runs"),
                       "--method", "lora", "--max-epochs", "1", "--no-progress-bar"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "row 10 (line 11) has 3 fields, the header 2" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ---------------------------------------------------------------- findings 4 and 6: saved runs

@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """(method, precision) -> a finished tiny run, each trained once for this module."""
    from conftest import train_tiny_run

    runs = {}

    def get(method: str, precision: str):
        if (method, precision) not in runs:
            out = tmp_path_factory.mktemp(f"{method}-{precision}")
            csv_path = out / "tiny.csv"
            csv_path.write_text("text,label\n" + "\n".join(f"{t},{label}" for t, label in make_texts(120)) + "\n")
            runs[method, precision] = train_tiny_run(tiny_model_dir, csv_path, out, "--method", method,
                                                     "--precision", precision, "--max-steps", "4",
                                                     "--lr", "2e-2" if method == "lora" else "1e-4")
        return runs[method, precision]

    return get


@pytest.mark.parametrize("method", ["lora", "full"])
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_evaluate_reproduces_the_test_metrics_of_results_json_exactly(trained, method, precision, tmp_path):
    """LoRA under bf16 was scored unmerged in training and merged by evaluate.py: another rounding."""
    from tweetcls.commands import evaluate

    run = trained(method, precision)
    assert evaluate.main([str(run), "--split", "test", "--output", str(tmp_path / "eval.json")]) == 0
    got = json.loads((tmp_path / "eval.json").read_text())
    saved = json.loads((run / "results.json").read_text())
    assert got["precision"] == saved["precision"] == precision
    expected = {k: v for k, v in saved["test"].items() if k != "confusion_matrix"}
    assert "loss" in expected and {k: got["metrics"][k] for k in expected} == expected


def test_a_saved_model_whose_config_names_more_labels_than_its_head_is_refused(trained, tmp_path, capsys):
    import shutil

    from tweetcls.commands import evaluate
    from tweetcls.commands import export
    from tweetcls import Predictor, load_run

    run = shutil.copytree(trained("full", "32-true"), tmp_path / "run")
    config_file = run / "model" / "config.json"
    config = json.loads(config_file.read_text())
    config["id2label"]["3"], config["label2id"]["extra"] = "extra", 3
    config_file.write_text(json.dumps(config))
    refusal = r"model/?: its saved classifier.weight has shape \[3, 32\], config.json \(naming 4 labels\) asks for \[4, 32\]"
    for form in (run, run / "model"):
        with pytest.raises(UsageError, match=refusal):
            load_run(form)
        with pytest.raises(UsageError, match=refusal):
            Predictor.from_run(form)
    capsys.readouterr()
    for command in (lambda: evaluate.main([str(run)]),
                    lambda: export.main([str(run), "--format", "onnx", "--out", str(tmp_path / "onnx")])):
        assert command() == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "config.json (naming 4 labels)" in err
    assert not (tmp_path / "onnx").exists()


def test_a_saved_model_missing_its_head_is_refused_not_given_a_random_one(tiny_model_dir):
    from tweetcls import load_run

    with pytest.raises(UsageError, match=r"its weights lack classifier.bias and 1 more, which would start random"):
        load_run(tiny_model_dir)


# ---------------------------------------------------------------- finding 7: texts with nothing visible, the API's input

INVISIBLE = ["", "   ", "\u200b", "\ufeff", "\u2060", "\u00ad", "\x00\x00", "\u200c\u200d", "\t\u3000\u2028", "\x85\u2029"]
VISIBLE = ["so happy today", "\u200bjoy\u200b", "👩\u200d💻", "😂", "嬉しい", "a\u00ad"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_whitespace_zero_width_and_control_characters_alone_are_blank(text):
    from tweetcls.core.blank_text import is_blank

    assert is_blank(text)


@pytest.mark.parametrize("text", VISIBLE)
def test_a_text_with_one_visible_character_is_not_blank(text):
    from tweetcls.core.blank_text import is_blank

    assert not is_blank(text)


def test_invisible_texts_are_empty_in_the_api_the_cli_and_the_service(trained, capsys):
    from tweetcls.commands import predict
    from fastapi.testclient import TestClient

    from tweetcls import Predictor
    from tweetcls.model_card import model_card
    from tweetcls.service import Limits, create_app

    run = trained("lora", "32-true")
    predictor = Predictor.from_run(run)
    texts = INVISIBLE + VISIBLE
    expected = [True] * len(INVISIBLE) + [False] * len(VISIBLE)
    assert [r["empty"] for r in predictor.predict(texts)] == expected
    capsys.readouterr()
    assert predict.main([str(run), *texts, "--no-progress-bar"]) == 0
    rows = capsys.readouterr().out.split("\n")
    labels = [line.split("\t")[1] for line in rows if line.split("\t")[0].isdigit()]
    assert [label == "(empty)" for label in labels] == expected
    with TestClient(create_app(predictor, model_card(predictor), Limits())) as client:
        got = client.post("/predict", json={"texts": texts}).json()["predictions"]
    assert [g["empty"] for g in got] == expected


def test_invisible_training_texts_are_dropped_by_the_same_rule(tmp_path, caplog):
    lines = good_lines() + [f"{text},joy" for text in INVISIBLE if "\n" not in text and "\r" not in text and text]
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8", newline="")
    with caplog.at_level(logging.WARNING):
        data = load_labelled_data(str(path))
    assert sum(len(split) for split in data.splits.values()) == len(ROWS)


@pytest.fixture(scope="module")
def predictor(trained):
    from tweetcls import Predictor

    return Predictor.from_run(trained("lora", "32-true"))


def test_a_bare_string_is_one_text_not_its_characters(predictor):
    one = predictor.predict("happy love")
    assert len(one) == 1 and one == predictor.predict(["happy love"]) == predictor.predict(("happy love",))
    assert predictor.probabilities("happy love").shape == (1, len(predictor.label_names))


@pytest.mark.parametrize("texts, named", [
    ({"a": "happy", "b": "sad"}, "got dict"), ([1, None], r"texts\[0\] is int"), (["ok", None], r"texts\[1\] is NoneType"),
    (None, "got NoneType"), (42, "got int"), ((t for t in ["happy"]), "got generator"), (b"happy", "got bytes"),
])
def test_anything_but_str_or_a_list_of_str_is_a_type_error(predictor, texts, named):
    with pytest.raises(TypeError, match=named):
        predictor.predict(texts)


@pytest.mark.parametrize("top_k", [-1, 0, 1.5, True, "2"])
def test_top_k_below_one_or_not_an_int_is_refused_by_its_api_name(predictor, top_k):
    with pytest.raises(UsageError, match=r"^top_k must be an int >= 1") as err:
        predictor.predict(["happy love"], top_k=top_k)
    assert "--" not in str(err.value)


def test_top_k_one_keeps_the_top_label(predictor):
    result = predictor.predict(["happy love"], top_k=1)[0]
    assert list(result["probabilities"]) == [result["label"]]


@pytest.mark.parametrize("value", [5, -0.1, 1.01, float("nan"), "0.5", True])
def test_min_confidence_outside_zero_to_one_is_refused(trained, predictor, value):
    from tweetcls import Predictor

    with pytest.raises(UsageError, match=r"^min_confidence must be a number in \[0, 1\]"):
        Predictor.from_run(trained("lora", "32-true"), min_confidence=value)
    predictor.min_confidence = value
    try:
        with pytest.raises(UsageError, match=r"^min_confidence must be"):
            predictor.predict(["happy love"])
    finally:
        predictor.min_confidence = None


def test_batch_size_is_named_as_the_api_names_it(trained):
    from tweetcls import Predictor

    with pytest.raises(UsageError, match=r"^batch_size must be an int > 0, got 0"):
        Predictor.from_run(trained("lora", "32-true"), batch_size=0)


def test_an_int8_variant_whose_config_names_more_labels_than_its_head_is_refused(trained, tmp_path):
    from tweetcls.compress.dynamic_int8 import quantize_int8, save_int8
    from tweetcls import Predictor, load_run

    run = load_run(trained("full", "32-true"))
    folder = tmp_path / "int8"
    save_int8(quantize_int8(run.model), folder)
    run.tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"]["3"], config["label2id"]["extra"] = "extra", 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match=r"its saved head has 3 outputs, config.json names 4 labels"):
        Predictor.from_run(folder)

"""Issue 46's "silently wrong" findings: data files read as the user did not mean them, a saved
model whose head disagrees with its config, evaluate.py scoring another model than training
did, and texts with nothing visible in them. Each test here failed before its fix."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import make_texts
from datamodules.sources import load_labelled_data
from tweetcls_core.errors import UsageError

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
    import train

    lines = good_lines()
    lines[9] = "so happy, love it,joy"
    path = csv_file(tmp_path, lines)
    code = train.main(["--model", str(tiny_model_dir), "--dataset", str(path), "--output-dir", str(tmp_path / "runs"),
                       "--method", "lora", "--max-epochs", "1", "--no-progress-bar"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "row 10 (line 11) has 3 fields, the header 2" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

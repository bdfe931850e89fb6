"""The README.md model card written into every saved form, in Hugging Face's conventions.

A YAML header the Hub reads (labels, base model, dataset, metrics), then what a user of
that one folder needs: how to load it in three lines with its own standard client, and
how to apply the calibration temperature and the abstain or multi-label threshold that
this project applies for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tweetcls.core.resolve import MODEL_TABLE

CARD_FILE = "README.md"

# the Hub's id (and config) of the datasets under ../shared/data; a CSV of one's own has none
HUB_DATASETS = {"go_emotions": ("google-research-datasets/go_emotions", "simplified"),
                "sst2": ("stanfordnlp/sst2", None), "imdb": ("stanfordnlp/imdb", None)}
FORMATS = ("transformers", "peft", "onnx", "int8")


def hub_dataset(dataset: str) -> tuple[str, str | None] | None:
    if dataset.startswith("tweet_eval/"):
        return "cardiffnlp/tweet_eval", dataset.split("/", 1)[1].replace("/", "_")
    return HUB_DATASETS.get(dataset)


def base_model_id(results: dict) -> str | None:
    model = str(results.get("model") or "")
    return MODEL_TABLE[model].hub_id if model in MODEL_TABLE else (model if model.count("/") == 1 and
                                                                    not Path(model).exists() else None)


def model_card(results: dict, form: str, folder_name: str = "<folder>", abstain: dict | None = None) -> str:
    """The card of a run's saved ``form`` (one of FORMATS), from its results.json."""
    if form not in FORMATS:
        raise ValueError(f"form must be one of {FORMATS}, got {form!r}")
    labels = list(results.get("label_names") or [])
    test = results.get("test") or {}
    temperature = (results.get("calibration") or {}).get("temperature")
    return "\n".join([_header(results, form, labels, test), "",
                      f"# {Path(str(results.get('run_dir', 'model'))).name}: {results.get('dataset')} classifier", "",
                      _summary(results, labels, test), "", "## Use it", "",
                      _how_to_load(results, form, folder_name, labels),
                      "", "## Decision rule", "", _decision_rule(results, temperature, abstain), ""])


def _header(results: dict, form: str, labels: list[str], test: dict) -> str:
    lines = ["---", f"library_name: {'peft' if form == 'peft' else 'onnx' if form == 'onnx' else 'transformers'}",
             "pipeline_tag: text-classification", "tags:", "- tweetcls", f"- {results.get('method')}"]
    base = base_model_id(results)
    if base:
        lines.append(f"base_model: {base}")
    dataset = hub_dataset(str(results.get("dataset", "")))
    if dataset:
        lines += ["datasets:", f"- {dataset[0]}"]
    lines += ["metrics:", "- f1", "- accuracy", "widget:", "- text: I can't believe how well today went!"]
    if test:
        lines += ["model-index:", f"- name: {Path(str(results.get('run_dir', 'model'))).name}", "  results:",
                  "  - task:", "      type: text-classification", "    dataset:",
                  f"      name: {results.get('dataset')}",
                  f"      type: {dataset[0] if dataset else results.get('dataset')}"]
        if dataset and dataset[1]:
            lines.append(f"      config: {dataset[1]}")
        lines += ["      split: test", "    metrics:"]
        for key, kind, name in (("macro_f1", "f1", "macro-F1"), ("accuracy", "accuracy", "accuracy")):
            if test.get(key) is not None:
                lines += [f"    - type: {kind}", f"      value: {round(float(test[key]), 4)}", f"      name: {name}"]
    lines.append("---")
    return "\n".join(lines)


def _summary(results: dict, labels: list[str], test: dict) -> str:
    config = results.get("config") or {}
    trained = results.get("params_trainable"), results.get("params_total")
    share = f"{trained[0]:,} of {trained[1]:,} parameters trained; " if all(isinstance(n, int) for n in trained) else ""
    facts = [f"Trained by tweetcls `train.py --method {results.get('method')}` on `{results.get('dataset')}` from "
             f"`{results.get('model')}` ({share}seed {results.get('seed')}, lr {config.get('lr')}, "
             f"max length {config.get('max_length', 128)}).",
             "",
             f"Labels ({'multi-label: each one is yes/no' if results.get('multi_label') else 'one per text'}): "
             + ", ".join(f"`{i}` {name}" for i, name in enumerate(labels)) + "."]
    shown = {k: v for k, v in test.items() if k in ("macro_f1", "accuracy", "micro_f1") and v is not None}
    if shown:
        facts += ["", "Test split: " + ", ".join(f"{k.replace('_', '-')} {float(v):.4f}" for k, v in shown.items())
                  + " (as computed in tweetcls; the loading code below gives the same predictions)."]
    if results.get("pooling") == "mean":
        facts += ["", "**Pooling: the masked mean of all token vectors** (sentence-transformers checkpoints "
                  "such as all-MiniLM-L6-v2 were trained that way). Plain transformers classes read the first "
                  "token instead, so this folder "
                  "carries `modeling_tweetcls.py` (torch and transformers only; read it before you run it) and "
                  "loads only with `trust_remote_code=True`: without it transformers refuses the folder rather "
                  "than give other predictions."]
    return "\n".join(facts)


def _how_to_load(results: dict, form: str, folder: str, labels: list[str]) -> str:
    mean = results.get("pooling") == "mean"
    if form == "transformers":
        trust = ", trust_remote_code=True" if mean else ""
        body = ["```python", "from transformers import pipeline", "",
                f'classify = pipeline("text-classification", model="{folder}"{trust})',
                'print(classify("I can\'t believe how well today went!", top_k=None))', "```"]
        if results.get("multi_label"):
            body.append("A multi-label model: pass `function_to_apply=\"sigmoid\"` and apply the threshold below.")
        return "\n".join(body)
    if form == "peft":
        base = base_model_id(results) or results.get("model_path") or "<the base model>"
        id2label = json.dumps(dict(enumerate(labels)))
        return "\n".join(["```python", "from peft import PeftModel",
                          "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
                          f'base = AutoModelForSequenceClassification.from_pretrained("{base}", '
                          f"num_labels={len(labels)}, id2label={id2label})",
                          f'model = PeftModel.from_pretrained(base, "{folder}").eval()',
                          f'tokenizer = AutoTokenizer.from_pretrained("{base}")', "```"])
    if form == "onnx":
        return "\n".join(["```python", "import numpy as np, onnxruntime, tokenizers", "",
                          f'session = onnxruntime.InferenceSession("{folder}/model.onnx")',
                          f'tok = tokenizers.Tokenizer.from_file("{folder}/tokenizer.json")',
                          f"tok.enable_truncation({(results.get('config') or {}).get('max_length', 128)})",
                          "enc = tok.encode(\"I can't believe how well today went!\")",
                          "feed = {\"input_ids\": np.array([enc.ids]), "
                          "\"attention_mask\": np.array([enc.attention_mask]), "
                          "\"token_type_ids\": np.array([enc.type_ids])}",
                          "logits = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]",
                          "```", "Pooling, labels and the decision rule are also in the ONNX metadata and in "
                          "`tweetcls.json`; `model-int8.onnx` and `model-int8-static.onnx`, where present, load the same way."])
    return ("This is torch dynamic int8 (`model_int8.safetensors`, weights re-packed on load): only tweetcls "
            "loads it (`from tweetcls import Predictor; Predictor.from_run(\"" + folder + "\")`), and plain "
            "transformers refuses the folder (it holds no `model.safetensors`). For int8 outside this project "
            "use `python export.py RUN --format onnx-int8` and ONNX Runtime.")


def _decision_rule(results: dict, temperature: float | None, abstain: dict | None) -> str:
    lines = []
    if results.get("multi_label"):
        threshold = results.get("threshold")
        threshold = threshold if threshold is not None else 0.5
        lines.append(f"Multi-label: label *i* is on when `sigmoid(logits[i]) >= {threshold}`"
                     " (threshold tuned on the validation split).")
    else:
        lines.append("The predicted label is `argmax(logits)`.")
        if temperature:
            lines.append(f"Calibrated probabilities: `softmax(logits / {float(temperature):.4f})` (temperature "
                         "fitted on the validation split; the argmax is unchanged by it). A pipeline's scores are "
                         "uncalibrated: call it with `function_to_apply=\"none\"` and apply the temperature.")
        if abstain and abstain.get("threshold") is not None:
            lines.append(f"Abstain: answer \"uncertain\" when the top calibrated probability is below "
                         f"{float(abstain['threshold']):.4f} (chosen on the validation split for precision "
                         f"{abstain.get('target_precision', '?')}).")
        else:
            lines.append("No abstain threshold was chosen (`predict.py RUN --abstain-precision P` chooses one on "
                         "the validation split and rewrites this card).")
    return "\n\n".join(lines)


ABSTAIN_LINE = re.compile(r'No abstain threshold was chosen .*|Abstain: answer "uncertain" when .*')  # _decision_rule's


def rewrite_run_card(run_dir: str | Path, abstain: dict | None) -> bool:
    """Rewrite a run's ``model/README.md`` (after an abstain threshold was chosen for it), only while it is
    the card this project wrote, whatever threshold it states: a card the user edited (their model card,
    before pushing it to a hub) was replaced and their text lost. Returns whether it was rewritten."""
    from tweetcls.core.results_file import read_results

    folder = Path(run_dir) / "model"
    card = folder / CARD_FILE
    if not card.is_file():
        return False
    results = read_results(run_dir)
    current = card.read_text().splitlines()
    names = dict.fromkeys([str(folder), str(folder.resolve()), str(Path(str(results.get("run_dir", run_dir))) / "model")])
    for name in names:
        ours = model_card(results, "transformers", name).splitlines()
        if len(ours) == len(current) and all(a == b or (ABSTAIN_LINE.fullmatch(a) and ABSTAIN_LINE.fullmatch(b))
                                             for a, b in zip(ours, current)):
            card.write_text(model_card(results, "transformers", name, abstain))
            return True
    return False

"""Multi-label heads start at the label frequencies: sigmoid(bias) = prior, and train.py does it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification

from tweetcls.commands import train
from tweetcls.datamodules.sources import load_labelled_data
from tweetcls.training.prior_bias import init_bias_to_label_prior, label_prior_logits, output_layer

LABELS = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1]])  # 25%, never, 25%, always


def tiny(kind: str, num_labels: int = 4):
    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  num_labels=num_labels, problem_type="multi_label_classification")
    torch.manual_seed(0)
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(**common))
    return MPNetForSequenceClassification(MPNetConfig(**common))


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_sigmoid_of_the_bias_is_each_labels_frequency(kind):
    model = tiny(kind)
    init_bias_to_label_prior(model, LABELS)
    probs = torch.sigmoid(output_layer(model).bias.detach()).tolist()
    assert probs[0] == pytest.approx(0.25, abs=1e-6) and probs[2] == pytest.approx(0.25, abs=1e-6)
    # a label never (always) seen gets a finite bias near 0 (1) rather than -inf (inf)
    assert torch.isfinite(output_layer(model).bias).all()
    assert probs[1] < 1e-3 and probs[3] > 1 - 1e-3


def test_with_a_zero_head_the_model_predicts_the_priors_for_any_input():
    model = tiny("mpnet").eval()
    init_bias_to_label_prior(model, LABELS)
    torch.nn.init.zeros_(output_layer(model).weight)
    with torch.no_grad():
        probs = torch.sigmoid(model(input_ids=torch.randint(5, 50, (3, 7))).logits)
    assert torch.allclose(probs, LABELS.float().mean(0).clamp(1e-4, 1 - 1e-4).expand(3, -1), atol=1e-5)
    # and the starting loss is the label entropy, far below the ln 2 of a zero bias
    loss = torch.nn.functional.binary_cross_entropy(probs, LABELS[:3].float())
    assert loss < 0.5 * torch.log(torch.tensor(2.0))


def test_a_label_count_mismatch_is_refused():
    with pytest.raises(ValueError, match="does not match 4 labels"):
        init_bias_to_label_prior(tiny("bert", num_labels=3), LABELS)


def test_train_starts_multi_label_heads_at_the_training_priors_unless_told_zero(tiny_model_dir, shared_data, tmp_path):
    common = ["--model", str(tiny_model_dir), "--dataset", "go_emotions", "--data-dir", str(shared_data),
              "--max-train-samples", "32", "--max-eval-samples", "32", "--max-epochs", "1", "--batch-size", "32",
              "--method", "full", "--lr", "1e-4", "--output-dir", str(tmp_path), "--no-progress-bar"]
    prior = label_prior_logits(torch.tensor(load_labelled_data("go_emotions", shared_data).splits["train"]["label"]))
    assert prior.max() < -0.5  # GoEmotions' log-odds lie between -6 and -0.7
    for head_bias in ("prior", "zero"):
        assert train.main([*common, "--run-name", head_bias, "--head-bias", head_bias]) == 0
        results = json.loads((tmp_path / head_bias / "results.json").read_text())
        assert results["steps"] == 1 and results["head_bias"] == head_bias
        bias = load_file(str(tmp_path / head_bias / "model" / "model.safetensors"))["classifier.bias"]
        # one AdamW step at 1e-4 moves a bias by about 1e-4
        expected = prior if head_bias == "prior" else torch.zeros_like(prior)
        assert torch.allclose(bias, expected, atol=1e-2)

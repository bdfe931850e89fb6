"""core/build.py: a saved classifier keeps its head only for the labels it was trained on."""

from __future__ import annotations

import torch

from tweetcls.core.build import load_classifier, trained_label_names


def test_a_head_trained_for_other_labels_of_the_same_count_starts_afresh(tmp_path, tiny_model_dir):
    assert trained_label_names(tiny_model_dir) is None  # a base model: nothing to keep or reset
    trained = load_classifier(tiny_model_dir, ["joy", "anger", "sadness"])
    with torch.no_grad():
        trained.classifier.weight.fill_(1.0)  # stands in for a head learned on that task
        trained.classifier.bias.fill_(1.0)
    trained.save_pretrained(tmp_path / "saved")
    assert trained_label_names(tmp_path / "saved") == ["joy", "anger", "sadness"]

    same = load_classifier(tmp_path / "saved", ["joy", "anger", "sadness"])
    assert torch.equal(same.classifier.weight, trained.classifier.weight)  # continuing the same task

    for labels in (["neg", "neutral", "pos"], ["anger", "joy", "sadness"]):  # another task; a reordering
        other = load_classifier(tmp_path / "saved", labels)
        assert not torch.equal(other.classifier.weight, trained.classifier.weight)
        assert torch.count_nonzero(other.classifier.bias) == 0 and other.classifier.weight.std() < 0.1
        for name, weight in other.bert.state_dict().items():  # the encoder is kept either way
            assert torch.equal(weight, trained.bert.state_dict()[name]), name

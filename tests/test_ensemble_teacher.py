"""experiments/ensemble_teacher.py: the ensemble is the mean of the teachers' logits, scored on the
run's own splits; runs of different label orders are refused."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import train_tiny_run
from experiments.ensemble_teacher import mean_logits, score
from experiments.split_logits import SplitLogits, run_split_logits


def teacher(logits: list[list[float]], labels: list[int], names=("a", "b", "c")) -> SplitLogits:
    return SplitLogits(list(names), torch.ones(len(names)), {"test": torch.tensor(logits)},
                       {"test": torch.tensor(labels)})


def test_the_ensemble_takes_the_mean_so_a_class_both_rank_second_can_win():
    # each teacher alone picks its own favourite (0 or 1); averaged, class 2 leads
    first = teacher([[3.0, 0.0, 2.5]], [2])
    second = teacher([[0.0, 3.0, 2.5]], [2])
    assert mean_logits([first, second], "test").argmax(-1).tolist() == [2]
    assert torch.allclose(mean_logits([first, second], "test"), torch.tensor([[1.5, 1.5, 2.5]]))


def test_runs_with_another_label_order_are_refused():
    with pytest.raises(SystemExit, match="same dataset and label order"):
        mean_logits([teacher([[1.0, 0.0, 0.0]], [0]), teacher([[1.0, 0.0, 0.0]], [0], ("b", "a", "c"))], "test")


def test_each_teacher_is_scored_on_the_splits_it_was_trained_with(tiny_model_dir, tiny_csv, tmp_path):
    runs = [train_tiny_run(tiny_model_dir, tiny_csv, tmp_path / f"s{seed}", "--seed", str(seed),
                           "--precision", "32-true") for seed in (0, 1)]
    result = score(runs)
    for run in runs:
        recorded = json.loads((run / "results.json").read_text())
        # the same test texts, model and fp32 arithmetic as train.py's own test pass
        assert result["runs"][str(run)]["test"] == pytest.approx(recorded["test"]["macro_f1"], abs=1e-6)
    assert set(result["ensemble"]) == {"validation", "test"}


def test_the_logits_are_the_named_splits_in_order(tiny_model_dir, tiny_csv, tmp_path):
    from transformers import AutoTokenizer

    from tweetcls.datamodules import TextClassificationDataModule

    run = train_tiny_run(tiny_model_dir, tiny_csv, tmp_path, "--precision", "32-true")
    scored = run_split_logits(run, ("validation", "test"))
    splits = TextClassificationDataModule(str(tiny_csv), AutoTokenizer.from_pretrained(tiny_model_dir)).load().splits
    for split in ("validation", "test"):
        assert scored.labels[split].tolist() == list(splits[split]["label"])
        assert scored.logits[split].shape == (len(splits[split]), len(scored.label_names))


def test_agreement_counts_same_top_label_and_kl_is_zero_only_for_the_same_distribution():
    from experiments.teacher_agreement import agreement

    teacher = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    same = agreement(teacher, teacher + 5.0)  # a constant shift leaves the softmax as it is
    assert same["agreement"] == 1.0 and same["kl"] == pytest.approx(0.0, abs=1e-6)
    student = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [0.0, 1.0]])  # flips the third
    flipped = agreement(teacher, student)
    assert flipped["agreement"] == 0.75 and flipped["kl"] > 0.1


def test_kl_is_taken_from_the_teacher_to_the_student():
    from experiments.teacher_agreement import agreement

    p, q = torch.tensor([2.0, 0.0]).softmax(-1), torch.tensor([0.5, 0.5])  # teacher sure, student undecided
    expected = float((p * (p / q).log()).sum())  # KL(p || q) = 0.328; the other way round is 0.434
    assert agreement(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]]))["kl"] == pytest.approx(expected, rel=1e-5)


def test_pool_label_profile_counts_top_labels_and_sure_texts():
    from experiments.pool_labels import label_profile

    logits = torch.tensor([[4.0, 0.0], [3.0, 0.0], [0.0, 0.5], [0.2, 0.0]])  # sure, sure, unsure, unsure
    profile = label_profile(logits, ["no", "yes"])
    assert profile["top_label_share"] == {"no": 0.75, "yes": 0.25}
    assert profile["sure_share"] == 0.5 and profile["texts"] == 4

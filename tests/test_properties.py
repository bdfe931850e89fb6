"""Properties that silent bugs in distill/, compress/, datamodules/ and core/ would break:
each test pins down one (row alignment, a sign, a scale factor, a permutation, an index set,
an ordering), on hand-made data, with the value computed independently."""

from __future__ import annotations

import errno
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import make_texts, save_tiny_classifier


@pytest.fixture(scope="module")
def tiny_classifier_dir(tiny_model_dir, tmp_path_factory):
    """A saved classifier (labels a, b, c) with its tokenizer, as a teacher folder looks."""
    return save_tiny_classifier(tiny_model_dir, tmp_path_factory.mktemp("teacher"))


def test_teacher_logits_land_on_their_own_rows_whatever_the_batching(tiny_classifier_dir):
    from tweetcls.distill.teacher_cache import compute_teacher_logits
    from tweetcls.core.build import load_tokenizer
    from tweetcls.loader import load_run

    texts = [t for t, _ in make_texts(30, seed=9)]
    texts = [t * (1 + i % 4) for i, t in enumerate(texts)]  # lengths differ: the pass sorts by length
    logits, labels = compute_teacher_logits(tiny_classifier_dir, texts, max_length=64, batch_size=4)
    model, tokenizer = load_run(tiny_classifier_dir).model, load_tokenizer(tiny_classifier_dir)
    with torch.no_grad():
        one_by_one = torch.stack([model(**tokenizer(t, truncation=True, max_length=64,
                                                    return_tensors="pt")).logits[0] for t in texts])
    assert labels == ["a", "b", "c"]
    torch.testing.assert_close(logits, one_by_one, rtol=0, atol=1e-5)


def test_a_teacher_with_another_label_order_is_matched_by_name(tiny_classifier_dir, tmp_path):
    import shutil

    from transformers import AutoConfig

    from tweetcls.distill.student import load_teacher

    permuted = tmp_path / "permuted"
    shutil.copytree(tiny_classifier_dir, permuted)
    config = AutoConfig.from_pretrained(permuted)  # same weights, output i now claims another label
    config.id2label, config.label2id = {0: "c", 1: "a", 2: "b"}, {"c": 0, "a": 1, "b": 2}
    config.save_pretrained(permuted)
    original = load_teacher(tiny_classifier_dir, ["a", "b", "c"]).eval()
    renamed = load_teacher(permuted, ["a", "b", "c"]).eval()
    ids = {"input_ids": torch.tensor([[2, 10, 11, 12, 3]])}
    with torch.no_grad():
        base, moved = original(**ids).logits[0], renamed(**ids).logits[0]
    # the permuted teacher's column "a" is the original's column 1 ("b"), and so on
    torch.testing.assert_close(moved, base[[1, 2, 0]], rtol=0, atol=1e-6)
    assert renamed.config.id2label == {0: "a", 1: "b", 2: "c"}


def test_cosine_hidden_loss_is_one_minus_cos_over_unmasked_tokens():
    from tweetcls.distill.losses import hidden_state_loss

    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, 8, generator=gen), torch.randn(2, 5, 8, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    teacher_garbage = teacher.clone()
    teacher_garbage[mask == 0] = 1e6  # masked positions must not count
    expected = (1 - F.cosine_similarity(student, teacher, dim=-1))[mask.bool()].mean()
    assert hidden_state_loss(student, teacher_garbage, mask, "cosine") == pytest.approx(float(expected), rel=1e-6)
    assert hidden_state_loss(student, student, mask, "cosine") == pytest.approx(0.0, abs=1e-6)
    assert hidden_state_loss(student, -student, mask, "cosine") == pytest.approx(2.0, abs=1e-6)
    mse = ((student - teacher) ** 2).mean(-1)[mask.bool()].mean()
    assert hidden_state_loss(student, teacher_garbage, mask, "mse") == pytest.approx(float(mse), rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_multi_label_kd_is_t_squared_times_the_per_label_kl(temperature):
    from tweetcls.distill.losses import kd_loss

    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    labels = (torch.rand(4, 5, generator=gen) > 0.5).float()
    p, q = torch.sigmoid(teacher / temperature), torch.sigmoid(student / temperature)
    kl = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean()  # Bernoulli KL per label
    soft = kd_loss(student, teacher, labels, temperature, alpha=1.0, multi_label=True)
    assert float(soft) == pytest.approx(temperature ** 2 * float(kl), rel=1e-5)
    hard = kd_loss(student, teacher, labels, temperature, alpha=0.0, multi_label=True)
    assert float(hard) == pytest.approx(float(F.binary_cross_entropy_with_logits(student, labels)), rel=1e-6)


def test_dropping_empty_texts_drops_their_labels_too():
    from tweetcls.datamodules.sources import make_split

    split = make_split(["first", "", "third", "   ", "fifth", None], [10, 11, 12, 13, 14, 15], "test")
    assert split["text"] == ["first", "third", "fifth"] and split["label"] == [10, 12, 14]


def test_multi_label_data_trains_with_per_label_sigmoid_cross_entropy(tiny_model_dir):
    from tweetcls.core.build import load_classifier
    from tweetcls.core.classifier import TextClassifier

    module = TextClassifier(load_classifier(tiny_model_dir, ["a", "b", "c"], multi_label=True), ["a", "b", "c"],
                            multi_label=True)
    logits, labels = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.0, 1.0]])
    expected = -(labels * torch.sigmoid(logits).log() + (1 - labels) * (1 - torch.sigmoid(logits)).log()).mean()
    assert float(module._loss(logits, labels)) == pytest.approx(float(expected), rel=1e-6)


def test_magnitude_pruning_zeroes_exactly_the_smallest_weights():
    from tweetcls.compress.unstructured import magnitude_prune, make_permanent

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(4, 5)

    model = Tiny()
    with torch.no_grad():
        model.layer.weight.copy_(torch.randperm(20).float().sub(9.5).view(5, 4))  # distinct magnitudes
    before = model.layer.weight.detach().clone()
    magnitude_prune(model, 0.3)
    make_permanent(model)
    smallest = set(torch.argsort(before.abs().flatten())[:6].tolist())
    zeroed = set(torch.nonzero(model.layer.weight.flatten() == 0).flatten().tolist())
    assert zeroed == smallest
    kept = [i for i in range(20) if i not in smallest]
    assert torch.equal(model.layer.weight.flatten()[kept], before.flatten()[kept])


def test_int8_linear_keeps_its_bias_and_rounds_within_half_a_step():
    from tweetcls.compress.int8_base import Int8Linear

    torch.manual_seed(0)
    linear = nn.Linear(16, 8)
    quantized = Int8Linear(linear)
    back = quantized.to_linear()
    assert torch.equal(back.bias, linear.bias)
    step = linear.weight.abs().amax(dim=1, keepdim=True) / 127
    assert ((back.weight - linear.weight).abs() <= step / 2 + 1e-7).all()
    x = torch.randn(3, 16)
    torch.testing.assert_close(quantized(x), back(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("n, batch, chunk_batches", [(103, 8, 2), (64, 8, 3), (10, 4, 1)])
def test_length_grouped_sampler_covers_each_index_once_and_reshuffles_each_epoch(n, batch, chunk_batches):
    from tweetcls.datamodules.length_grouping import LengthGroupedSampler

    lengths = [(i * 7919) % 50 + 1 for i in range(n)]
    sampler = LengthGroupedSampler(lengths, batch, seed=1, chunk_batches=chunk_batches)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert sorted(order) == list(range(n))  # each index exactly once, chunk boundaries included
        orders.append(order)
    assert orders[0] != orders[1] != orders[2]
    sampler.set_epoch(1)
    assert list(sampler) == orders[1]  # deterministic in (seed, epoch)
    sampler.set_epoch(1)
    sampler.resume_at = (1, 2)  # resumed after two batches of epoch 1: the rest of that epoch, nothing else
    assert list(sampler) == orders[1][2 * batch:]


def test_an_atomic_write_is_on_disk_before_the_rename(tmp_path, monkeypatch):
    from tweetcls.core.atomic import write_text_atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])

    def replace(src, dst):
        events.append(("replace", open(src).read()))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_text_atomic(tmp_path / "r.json", "x" * 10_000)
    assert events == ["fsync", ("replace", "x" * 10_000)]


def test_a_checkpoint_write_that_fails_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch):
    from tweetcls.training.checkpoint_io import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert math.isfinite(float(torch.load(path, weights_only=True)["step"]))


@pytest.mark.parametrize("kind", ["mse", "cosine"])
def test_the_hidden_state_target_is_the_teachers_last_layer_of_the_unpadded_text(tiny_model_dir, kind):
    """Pins the teacher side of the hidden-state loss: its last layer (not another), computed with
    its attention mask (padding must not change a short tweet's states), and the chosen loss kind."""
    from tweetcls.distill.hidden_collator import AlignedDistillationCollator
    from tweetcls.distill.losses import hidden_state_loss
    from tweetcls.distill.module import DistillationClassifier
    from tweetcls.distill.token_alignment import aligned_teacher_states
    from tweetcls.core.build import load_classifier, load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    torch.manual_seed(0)
    student, teacher = load_classifier(tiny_model_dir, ["a", "b"]), load_classifier(tiny_model_dir, ["a", "b"])
    module = DistillationClassifier(student, ["a", "b"], teacher=teacher, hidden_loss=kind)
    texts = ["love", "the river was quiet and so very calm today with my garden"]  # the first one is padded
    features = [dict(tokenizer(t, truncation=True, max_length=32)) | {"text": t, "labels": 0} for t in texts]
    batch = AlignedDistillationCollator(tokenizer, tokenizer, 32)(features)
    assert batch["teacher_attention_mask"][0].sum() < batch["teacher_attention_mask"].shape[1]
    student_states = torch.randn(*batch["input_ids"].shape, student.config.hidden_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = module._hidden_loss(student_states, batch)
        last = teacher.base_model(input_ids=batch["teacher_input_ids"],
                                  attention_mask=batch["teacher_attention_mask"]).last_hidden_state
        expected = hidden_state_loss(student_states, aligned_teacher_states(batch["align_weights"], last),
                                     batch["align_mask"], kind)
    torch.testing.assert_close(got, expected)


def test_the_aligned_collator_truncates_both_encodings_to_max_length(tiny_model_dir):
    from tweetcls.distill.hidden_collator import AlignedDistillationCollator
    from tweetcls.core.build import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    long_text = " ".join(["the river was quiet"] * 10)
    features = [dict(tokenizer(t, truncation=True, max_length=8)) | {"text": t, "labels": 0}
                for t in (long_text, "love")]
    batch = AlignedDistillationCollator(tokenizer, tokenizer, 8)(features)
    assert batch["input_ids"].shape[1] == batch["teacher_input_ids"].shape[1] == 8
    assert batch["align_weights"].shape == (2, 8, 8)


def test_the_aligned_collator_refuses_a_student_encoding_unlike_the_datasets(tiny_model_dir):
    """Dataset tokenized at another max_length than the collator's: the student states would not
    line up with the alignment, so it must stop with the cause named, not train on it."""
    from tweetcls.distill.hidden_collator import AlignedDistillationCollator
    from tweetcls.core.build import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    long_text = " ".join(["the river was quiet"] * 10)
    features = [dict(tokenizer(t, truncation=True, max_length=12)) | {"text": t, "labels": 0}
                for t in (long_text, "love")]
    with pytest.raises(RuntimeError, match="same tokenizer and max_length"):
        AlignedDistillationCollator(tokenizer, tokenizer, 8)(features)

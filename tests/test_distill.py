"""Distillation: the KD loss, the teacher-logit cache, and train.py --method teacher/distill."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tweetcls.commands import train
from tweetcls.core.errors import UsageError
from tweetcls.distill import teacher_cache
from tweetcls.distill.losses import kd_loss
from tweetcls.distill.teacher_cache import align_labels, cached_teacher_logits


def test_kd_loss_reduces_to_cross_entropy_at_alpha_zero():
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(kd_loss(s, t, y, alpha=0.0), F.cross_entropy(s, y))


def test_kd_soft_term_is_t_squared_kl_and_zero_when_student_matches():
    s, t, y = torch.randn(6, 3), torch.randn(6, 3), torch.zeros(6, dtype=torch.long)
    T = 3.0
    p_t, log_p_s = F.softmax(t / T, -1), F.log_softmax(s / T, -1)
    manual = (p_t * (p_t.log() - log_p_s)).sum(-1).mean() * T * T
    torch.testing.assert_close(kd_loss(s, t, y, temperature=T, alpha=1.0), manual)
    assert kd_loss(t, t, y, temperature=T, alpha=1.0).abs() < 1e-6


def test_multi_label_kd_is_zero_for_a_matching_student_and_positive_otherwise():
    t, y = torch.randn(4, 5), torch.randint(0, 2, (4, 5))
    assert kd_loss(t, t, y, alpha=1.0, multi_label=True).abs() < 1e-5
    assert kd_loss(torch.randn(4, 5), t, y, alpha=1.0, multi_label=True) > 0.01


def test_labels_align_by_name_and_mismatches_are_refused():
    assert align_labels(["joy", "anger", "calm"], ["anger", "calm", "joy"]) == [1, 2, 0]
    with pytest.raises(UsageError, match="teacher labels .* differ from the dataset's"):
        align_labels(["joy", "anger"], ["anger", "calm"])


def run(args):
    assert train.main([*args, "--no-progress-bar", "--batch-size", "16"]) == 0


@pytest.fixture(scope="module")
def teacher_run(tiny_model_dir, tiny_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    run(["--method", "teacher", "--model", str(tiny_model_dir), "--dataset", str(tiny_csv), "--output-dir", str(out),
         "--run-name", "t", "--max-epochs", "3", "--lr", "3e-3"])
    return out / "t"


def test_teacher_logits_are_computed_once_and_keyed_by_teacher_and_texts(teacher_run, tmp_path, monkeypatch):
    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path))
    labels = ["anger", "calm", "joy"]
    texts = ["we love the sunshine", "awful broken chair", "the quiet river"]
    first, path = cached_teacher_logits(teacher_run / "model", texts, labels, 32)
    assert first.shape == (3, 3) and path.is_dir() and len(list(path.glob("*.safetensors"))) == 1

    def fail(*a, **k):
        raise AssertionError("teacher ran again")

    monkeypatch.setattr(teacher_cache, "label_chunk", fail)  # the Trainer.predict pass of a missing chunk
    again, same = cached_teacher_logits(teacher_run / "model", texts, labels, 32)
    assert same == path and torch.equal(again, first)
    # labels in another order: the columns follow the names
    permuted, _ = cached_teacher_logits(teacher_run / "model", texts, ["joy", "anger", "calm"], 32)
    assert torch.equal(permuted, first[:, [2, 0, 1]])
    with pytest.raises(AssertionError, match="teacher ran again"):  # other texts: a new key
        cached_teacher_logits(teacher_run / "model", texts[:2], labels, 32)
    with pytest.raises(AssertionError, match="teacher ran again"):  # other max_length: a new key
        cached_teacher_logits(teacher_run / "model", texts, labels, 16)


def test_changed_teacher_weights_change_the_key(teacher_run, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "teacher"
    shutil.copytree(teacher_run / "model", copy)
    _, before = cached_teacher_logits(copy, ["a b c"], ["anger", "calm", "joy"], 32)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(copy / "model.safetensors"))
    weights["classifier.bias"] = weights["classifier.bias"] + 1.0
    save_file(weights, str(copy / "model.safetensors"))
    _, after = cached_teacher_logits(copy, ["a b c"], ["anger", "calm", "joy"], 32)
    assert after != before


def test_teacher_logits_are_cached_in_chunks_that_a_prefix_and_an_interrupted_pass_reuse(teacher_run, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path))
    monkeypatch.setattr(teacher_cache, "CHUNK", 2)
    labels = ["anger", "calm", "joy"]
    texts = ["we love the sunshine", "awful broken chair", "the quiet river", "a calm sea", "angry wet dog"]
    whole, folder = cached_teacher_logits(teacher_run / "model", texts, labels, 32)
    files = sorted(folder.glob("*.safetensors"))
    assert len(files) == 3  # 2 + 2 + 1 texts
    alone, _ = teacher_cache.compute_teacher_logits(teacher_run / "model", texts, 32)
    torch.testing.assert_close(whole, alone[:, align_labels(["anger", "calm", "joy"], labels)], rtol=0, atol=1e-5)
    computed = []
    real = teacher_cache.label_chunk
    monkeypatch.setattr(teacher_cache, "label_chunk", lambda *a, **k: computed.append(a[4]) or real(*a, **k))
    prefix, _ = cached_teacher_logits(teacher_run / "model", texts[:4], labels, 32)  # whole chunks of a larger set
    assert computed == [] and torch.equal(prefix, whole[:4])
    (folder / f"{teacher_cache._key(chr(30).join(texts[2:4]))}.safetensors").unlink()  # a pass stopped midway:
    # only the missing chunk runs again
    again, _ = cached_teacher_logits(teacher_run / "model", texts, labels, 32)
    assert len(computed) == 1 and len(computed[0]) == 2 and torch.equal(again, whole)


def test_an_ensemble_of_teachers_gives_their_mean_logits(teacher_run, tmp_path, monkeypatch):
    import shutil

    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path / "cache"))
    other = tmp_path / "other"
    shutil.copytree(teacher_run / "model", other)
    weights = load_file(str(other / "model.safetensors"))
    weights["classifier.bias"] = weights["classifier.bias"] + torch.tensor([3.0, 0.0, -3.0])
    save_file(weights, str(other / "model.safetensors"))
    labels, texts = ["anger", "calm", "joy"], ["we love the sunshine", "awful broken chair"]
    first, _ = cached_teacher_logits(teacher_run / "model", texts, labels, 32)
    second, _ = cached_teacher_logits(other, texts, labels, 32)
    mean, folders = teacher_cache.ensemble_teacher_logits([teacher_run / "model", other], texts, labels, 32)
    assert len(set(folders)) == 2 and not torch.equal(first, second)
    torch.testing.assert_close(mean, (first + second) / 2)


def test_a_student_distilled_from_an_ensemble_end_to_end(teacher_run, tiny_csv, tmp_path, capsys):
    import shutil

    second = tmp_path / "second"
    shutil.copytree(teacher_run, second)
    run(["--method", "distill", "--teacher", f"{teacher_run},{second}", "--student", str(teacher_run / "model"),
         "--dataset", str(tiny_csv), "--output-dir", str(tmp_path), "--run-name", "ens", "--max-epochs", "1"])
    results = json.loads((tmp_path / "ens" / "results.json").read_text())
    assert len(results["distill"]["teacher_logits_cache"]) == 2
    assert train.main(["--method", "distill", "--teacher", f"{teacher_run},{second}", "--layers", "odd",
                       "--dataset", str(tiny_csv), "--output-dir", str(tmp_path)]) == 2
    assert "several --teacher folders (an ensemble) work with --student only" in capsys.readouterr().err


def test_layer_copied_student_with_kd_end_to_end(teacher_run, tiny_csv, tmp_path):
    run(["--method", "distill", "--teacher", str(teacher_run), "--layers", "odd", "--dataset", str(tiny_csv),
         "--output-dir", str(tmp_path), "--run-name", "s", "--max-epochs", "2", "--kd-temperature", "3",
         "--kd-alpha", "0.7"])
    results = json.loads((tmp_path / "s" / "results.json").read_text())
    info = results["distill"]
    assert info["layers"] == [0] and info["temperature"] == 3 and info["alpha"] == 0.7
    assert 0 < info["student_to_teacher_params"] < 1
    assert results["params_total"] < info["teacher_params"]
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "s" / "model").num_hidden_layers == 1


def test_lora_on_a_layer_copied_student_trains_only_adapters_and_saves_the_merged_student(teacher_run, tiny_csv,
                                                                                        tmp_path):
    from safetensors.torch import load_file

    run(["--method", "distill-lora", "--teacher", str(teacher_run), "--layers", "odd", "--dataset", str(tiny_csv),
         "--output-dir", str(tmp_path), "--run-name", "sl", "--max-epochs", "2"])
    results = json.loads((tmp_path / "sl" / "results.json").read_text())
    assert results["distill"]["layers"] == [0] and results["lora"]["targets"]
    assert results["params_trainable"] < results["params_total"] / 2
    student, teacher = (load_file(str(d / "model.safetensors")) for d in (tmp_path / "sl" / "model", teacher_run / "model"))
    embeddings = [k for k in student if "word_embeddings" in k]
    assert embeddings and all(torch.equal(student[k], teacher[k]) for k in embeddings)  # frozen under LoRA
    query = next(k for k in student if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.equal(student[query], teacher[query])  # the learned update, merged into the copied block
    # an adapter/ would name the 12-layer teacher as its base: the copied student exists only in model/
    assert not (tmp_path / "sl" / "adapter").exists()


def test_independent_student_with_its_own_tokenizer(teacher_run, tiny_csv, tmp_path):
    from conftest import build_tiny_model_dir

    from transformers import AutoConfig

    from tweetcls.core.build import load_tokenizer

    student = build_tiny_model_dir(tmp_path / "student-model", extra_words=["sunshine", "furious", "zebra"])
    run(["--method", "distill", "--teacher", str(teacher_run), "--student", str(student), "--dataset", str(tiny_csv),
         "--output-dir", str(tmp_path), "--run-name", "ind", "--max-epochs", "1"])
    results = json.loads((tmp_path / "ind" / "results.json").read_text())
    assert results["distill"]["student"] == str(student) and results["distill"]["layers"] is None
    # the saved student is the student (its vocabulary, its tokenizer), not a copy of the teacher
    saved, teacher = AutoConfig.from_pretrained(tmp_path / "ind" / "model"), AutoConfig.from_pretrained(teacher_run / "model")
    assert saved.vocab_size == AutoConfig.from_pretrained(student).vocab_size != teacher.vocab_size
    assert load_tokenizer(tmp_path / "ind" / "model")("zebra")["input_ids"] == load_tokenizer(student)("zebra")["input_ids"]
    assert results["distill"]["teacher_logits_cache"] and results["distill"]["alpha"] == 0.5


@pytest.mark.parametrize("extra, message", [
    (["--method", "distill", "--layers", "odd"], "--method distill needs --teacher"),
    (["--method", "distill", "--teacher", "x"], "exactly one of --layers"),
    (["--method", "lora", "--layers", "odd"], "--layers odd belongs to --method distill or distill-lora; --method lora does not read it"),
    (["--method", "distill", "--teacher", "x", "--layers", "odd", "--transfer-data", "t.txt", "--kd-alpha", "0"],
     "--transfer-data texts have no labels, only the teacher's: use --kd-alpha > 0"),
])
def test_distill_flag_errors(extra, message, capsys):
    assert train.main(extra) == 2
    assert message in capsys.readouterr().err


def test_deeper_than_the_teacher_is_refused(teacher_run, tiny_csv, tmp_path, capsys):
    code = train.main(["--method", "distill", "--teacher", str(teacher_run), "--layers", "0,1,2",
                       "--dataset", str(tiny_csv), "--output-dir", str(tmp_path)])
    assert code == 2
    assert "layer index 2 is out of range: the teacher has layers 0..1" in capsys.readouterr().err


def test_hidden_state_loss_across_tokenizers_and_widths(teacher_run, tiny_csv, tmp_path):
    """A student with another vocabulary and a narrower hidden size: tokens aligned by
    offsets, a learned projection to the teacher's width, and the loss logged."""
    from conftest import build_tiny_model_dir

    student = build_tiny_model_dir(tmp_path / "narrow", hidden_size=24, extra_words=["sunshine", "furious"])
    run(["--method", "distill", "--teacher", str(teacher_run), "--student", str(student), "--dataset", str(tiny_csv),
         "--output-dir", str(tmp_path), "--run-name", "h", "--max-epochs", "2", "--hidden-loss", "cosine"])
    results = json.loads((tmp_path / "h" / "results.json").read_text())
    assert results["distill"]["hidden_loss"] == "cosine"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values = []
    for events in (tmp_path / "h").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if "train/hidden_loss_epoch" in acc.Tags()["scalars"]:
            values = [e.value for e in sorted(acc.Scalars("train/hidden_loss_epoch"), key=lambda e: e.step)]
    values = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]  # one level per epoch (review.py)
    assert len(values) == 2 and all(0 < v < 2 for v in values)
    assert values[1] < values[0]  # the student moves towards the teacher's states
    state = torch.load(next((tmp_path / "h" / "checkpoints").glob("best-*.ckpt")), weights_only=True)["state_dict"]
    assert not any(k.startswith("teacher.") for k in state) and "projection.weight" in state


def test_transfer_rows_get_the_soft_term_only():
    s, t = torch.randn(6, 3), torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    has_label = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    masked = kd_loss(s, t, y, alpha=0.5, has_label=has_label)
    # the placeholder labels of unlabelled rows do not matter ...
    assert torch.allclose(masked, kd_loss(s, t, torch.tensor([0, 1, 2, 2, 2, 2]), alpha=0.5, has_label=has_label))
    # ... the hard term is the labelled rows' mean, the soft term every row's
    expected = 0.5 * kd_loss(s, t, y, alpha=1.0) + 0.5 * F.cross_entropy(s[:3], y[:3])
    torch.testing.assert_close(masked, expected)
    assert torch.allclose(kd_loss(s, t, y, alpha=0.5, has_label=torch.ones(6)), kd_loss(s, t, y, alpha=0.5))
    none = kd_loss(s, t, y, alpha=0.5, has_label=torch.zeros(6))
    torch.testing.assert_close(none, 0.5 * kd_loss(s, t, y, alpha=1.0))


def test_multi_label_transfer_rows_get_the_soft_term_only():
    s, t, y = torch.randn(4, 5), torch.randn(4, 5), torch.randint(0, 2, (4, 5))
    has_label = torch.tensor([1.0, 0.0, 1.0, 0.0])
    flipped = y.clone()
    flipped[1] = 1 - flipped[1]
    assert torch.allclose(kd_loss(s, t, y, alpha=0.3, multi_label=True, has_label=has_label),
                          kd_loss(s, t, flipped, alpha=0.3, multi_label=True, has_label=has_label))
    assert torch.allclose(kd_loss(s, t, y, alpha=0.3, multi_label=True, has_label=torch.ones(4)),
                          kd_loss(s, t, y, alpha=0.3, multi_label=True))


def test_transfer_set_leaves_out_the_task_own_texts_duplicates_and_near_copies_of_its_eval_texts(tmp_path):
    from tweetcls.distill.transfer_set import transfer_set

    task = {"train": ["a training tweet"], "validation": ["Val tweet about the storm tonight in town"],
            "test": ["a test tweet"]}
    lines = ["a test tweet", "new one", "", "new one", "another new", "  A TRAINING tweet!  ",
             "RT @someone: val tweet about the storm tonight in town http://t.co/x",  # the same words: a retweet
             "so true -> val tweet about the storm tonight, wow",  # quotes a 6-word run of it
             "the storm tonight in town was loud"]  # shares 5 words in a row only: kept
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n")
    found = transfer_set(str(path), None, None, task)
    assert sorted(found.texts) == ["another new", "new one", "the storm tonight in town was loud"]
    assert found.dropped == {"empty": 1, "duplicate": 1, "task_text": 1, "task_eval_same": 2, "task_eval_near": 1}
    assert found.candidates == len(lines) and found.report(str(path))["texts"] == 3
    assert transfer_set(str(path), None, None, task).texts == found.texts  # fixed order
    assert len(transfer_set(str(path), None, 1, task).texts) == 1
    with pytest.raises(UsageError, match="no texts outside"):
        transfer_set(str(path), None, None, {"train": ["a training tweet", "new one", "another new", "the storm tonight in town was loud"],
                                             **{k: v for k, v in task.items() if k != "train"}})
    with pytest.raises(UsageError, match="no such file"):
        transfer_set(str(tmp_path / "missing.txt"), None, None, task)


def test_transfer_texts_come_in_one_fixed_shuffled_order(tmp_path):
    from tweetcls.distill.transfer_set import transfer_set

    path = tmp_path / "many.txt"
    lines = [f"tweet number {i}" for i in range(200)]
    path.write_text("\n".join(lines) + "\n")
    first = transfer_set(str(path), None, None, {}).texts
    assert sorted(first) == sorted(lines) and first != lines  # shuffled, every text once
    assert all(transfer_set(str(path), None, None, {}).texts == first for _ in range(3))  # and always alike
    assert transfer_set(str(path), None, 50, {}).texts == first[:50]  # a limit takes a prefix of it


def test_the_pool_holds_every_offline_text_but_the_task_own_and_its_eval_near_copies():
    from conftest import SHARED_DATA as data_dir

    from tweetcls.datamodules.sources import load_labelled_data
    from tweetcls.distill.transfer_set import near_duplicate_key, shingles, transfer_set

    task = {k: list(v["text"]) for k, v in load_labelled_data("tweet_eval/irony", data_dir).splits.items()}
    pool = transfer_set("pool", data_dir, None, task)
    assert {"tweet_eval/emoji", "go_emotions", "tweet_eval/emotion"} <= set(pool.per_source)
    assert pool.per_source["tweet_eval/emoji"] == 100000  # every split: another task's test is not irony's
    assert len(pool.texts) > 150000 and pool.dropped["task_text"] > 2000 and pool.dropped["task_eval_same"] > 1700
    held_out = {near_duplicate_key(t) for split in ("validation", "test") for t in task[split]}
    runs = set().union(*(shingles(k) for k in held_out))
    keys = [near_duplicate_key(t) for t in pool.texts]
    assert not held_out.intersection(keys) and all(shingles(k).isdisjoint(runs) for k in keys)
    assert len(set(keys)) == len(keys)


def test_student_learns_from_a_transfer_set_end_to_end(teacher_run, tiny_csv, tmp_path, monkeypatch):
    from conftest import make_texts

    own = {text for text, _ in make_texts(120)}
    extra = sorted({text for text, _ in make_texts(60, seed=7)} - own)
    (tmp_path / "unlabelled.txt").write_text("\n".join(extra) + "\n")
    common = ["--method", "distill", "--teacher", str(teacher_run), "--layers", "odd", "--dataset", str(tiny_csv),
              "--output-dir", str(tmp_path), "--max-epochs", "1"]
    run([*common, "--run-name", "plain"])
    run([*common, "--run-name", "transfer", "--transfer-data", str(tmp_path / "unlabelled.txt")])
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    transfer = json.loads((tmp_path / "transfer" / "results.json").read_text())
    assert transfer["distill"]["transfer"]["texts"] == len(extra)
    from tweetcls.datamodules.sources import load_labelled_data

    n = len(load_labelled_data(str(tiny_csv)).splits["train"])
    assert plain["steps"] == -(-n // 16) and transfer["steps"] == -(-(n + len(extra)) // 16)  # batch 16, 1 epoch
    assert transfer["steps"] > plain["steps"]

    # experiments/pool_labels.py reads back the teacher's logits the run trained on: all from its cache
    import tweetcls.distill.teacher_cache
    from experiments.pool_labels import transfer_logits

    def no_teacher(*a, **k):
        raise AssertionError("a chunk was not in the run's cache: other texts, order, length or precision")

    monkeypatch.setattr(tweetcls.distill.teacher_cache, "load_logit_teacher", no_teacher)
    names, counts, logits = transfer_logits(tmp_path / "transfer")
    assert names == transfer["label_names"] and len(logits) == len(extra) and counts.sum() == n
    # and the rows it returns are the transfer texts' (a teacher whose logit names its text)
    vocabulary = sorted(own | set(extra))
    monkeypatch.setattr(tweetcls.distill.teacher_cache, "ensemble_teacher_logits", lambda teachers, texts, *a, **k: (
        torch.tensor([[float(vocabulary.index(t)), 0.0, 0.0] for t in texts]), []))
    _, _, logits = transfer_logits(tmp_path / "transfer")
    assert sorted(vocabulary[int(i)] for i in logits[:, 0]) == sorted(extra)


def test_uniform_layer_choice_at_one_and_two_layers_and_an_empty_list():
    from tweetcls.distill.layer_copy import select_layers

    assert select_layers("uniform", 12, 1) == [11]  # one layer: the last, not a division by zero
    assert select_layers("uniform", 12, 2) == [0, 11]  # first and last
    assert select_layers("uniform", 12, 4) == [0, 4, 7, 11]
    with pytest.raises(UsageError, match="^layers need at least one layer index$"):
        select_layers([], 12)


def test_without_teacher_logits_a_student_learns_from_the_labels_alone(tiny_model_dir):
    """A distillation batch without teacher logits (no logit KD) is the plain task loss."""
    from tweetcls.distill.module import DistillationClassifier
    from tweetcls.core.build import load_classifier, load_tokenizer

    module = DistillationClassifier(load_classifier(tiny_model_dir, ["a", "b"]), ["a", "b"]).eval()
    batch = dict(load_tokenizer(tiny_model_dir)(["one text", "and another text"], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0])
    with torch.no_grad():
        expected = F.cross_entropy(module.model(**{k: v for k, v in batch.items() if k != "labels"}).logits,
                                   batch["labels"])
        assert torch.allclose(module.training_loss(batch), expected)

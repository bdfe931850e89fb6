"""distill/ against what each step must compute, checked independently: the KD loss formula,
layer choices counted as papers count them, label reordering by name, teacher logits in the
texts' order, token alignment by overlap, and the transfer set's exclusion of any 6-word run
of a held-out text (property-based)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tweetcls.distill.layer_copy import copy_layers, select_layers
from tweetcls.distill.losses import hidden_state_loss, kd_loss
from tweetcls.distill.student import reorder_labels
from tweetcls.distill.teacher_cache import align_labels
from tweetcls.distill.token_alignment import alignment_matrix
from tweetcls.distill.transfer_set import SHINGLE_WORDS, transfer_set

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_kd_loss_is_the_documented_formula_and_ignores_unlabelled_rows_in_the_hard_term():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    labels, has_label = torch.tensor([0, 1, 2, 3, 0, 0]), torch.tensor([1.0, 1, 1, 1, 0, 0])
    t, alpha = 3.0, 0.3
    p_t = F.softmax(teacher / t, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(student / t, -1))).sum(-1).mean()
    ce = F.cross_entropy(student[:4], labels[:4])
    expected = alpha * t * t * kl + (1 - alpha) * ce
    assert kd_loss(student, teacher, labels, t, alpha, has_label=has_label) == pytest.approx(float(expected), rel=1e-5)


def test_the_hidden_state_loss_ignores_padding_whatever_it_holds():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    loss = hidden_state_loss(s, t, mask)
    s2 = s.clone()
    s2[0, 3:] = torch.randn(2, 8, generator=g) * 100
    assert hidden_state_loss(s2, t, mask) == pytest.approx(float(loss), rel=1e-6)
    per_token = 1 - F.cosine_similarity(s, t, dim=-1)
    assert float(loss) == pytest.approx(float(per_token[mask.bool()].mean()), rel=1e-6)


def test_layer_strategies_count_as_the_papers_do():
    assert select_layers("odd", 12) == [0, 2, 4, 6, 8, 10]  # layers 1, 3, ..., 11 counted from 1
    assert select_layers("even", 12) == [1, 3, 5, 7, 9, 11]
    assert select_layers("top", 12, 3) == [9, 10, 11]
    assert select_layers("bottom", 12, 3) == [0, 1, 2]
    uniform = select_layers("uniform", 12, 4)
    assert uniform[0] == 0 and uniform[-1] == 11 and len(set(uniform)) == 4


def test_a_copied_block_is_the_teachers_block_it_names(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3)
    student = copy_layers(teacher, [1])
    for (name, got), (_, want) in zip(student.bert.encoder.layer[0].state_dict().items(),
                                      teacher.bert.encoder.layer[1].state_dict().items()):
        assert torch.equal(got, want), name


@FAST
@given(order=st.permutations(range(5)))
def test_reordering_a_head_moves_weights_and_biases_by_name(order):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=8, num_labels=5)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.bias.normal_()
    teacher_names = ["a", "b", "c", "d", "e"]
    student_names = [teacher_names[i] for i in order]
    ids = torch.tensor([[1, 5, 6, 2]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
        reorder_labels(model, align_labels(teacher_names, student_names), student_names)
        after = model(input_ids=ids).logits
    assert torch.allclose(after, before[:, list(order)], atol=1e-6)
    assert [model.config.id2label[i] for i in range(5)] == student_names


def test_teacher_logits_come_back_in_the_texts_order(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from tweetcls.distill.teacher_cache import teacher_logits
    from tweetcls.core.build import load_tokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3).eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    texts = ["the river and the garden were so very quiet today", "joy", "so angry", "we love the party a lot"]
    got = teacher_logits(tokenizer, model, texts, max_length=32, batch_size=2)
    with torch.no_grad():
        alone = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in texts])
    assert torch.allclose(got, alone, atol=1e-5)


def test_tokens_that_only_touch_are_not_aligned():
    weights, mask = alignment_matrix([(0, 0), (0, 3), (3, 6), (0, 0)], [1, 0, 0, 1],
                                     [(0, 0), (0, 3), (3, 6), (0, 0)], [1, 0, 0, 1])
    assert torch.equal(weights, torch.eye(4)) and mask.all()


WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture(scope="module")
def pool_file(tmp_path_factory):
    return tmp_path_factory.mktemp("pool") / "pool.txt"


@FAST
@given(held=st.lists(st.sampled_from(WORDS), min_size=SHINGLE_WORDS, max_size=14), data=st.data(),
       split=st.sampled_from(["validation", "test"]))
def test_a_text_holding_any_six_word_run_of_a_held_out_text_is_left_out(pool_file, held, data, split):
    start = data.draw(st.integers(0, len(held) - SHINGLE_WORDS), label="start")
    window = held[start:start + SHINGLE_WORDS]
    quote = "RT @someone " + " ".join(["fresh", "words"] + window + ["more"]) + " https://t.co/x"
    pool_file.write_text(f"{quote}\nan unrelated text about nothing at all here\n")
    result = transfer_set(str(pool_file), None, None, {"train": ["x"], split: ["@bob " + " ".join(held)]})
    assert result.texts == ["an unrelated text about nothing at all here"]
    assert result.dropped["task_eval_near"] + result.dropped["task_eval_same"] == 1


def test_a_retweet_of_a_short_held_out_text_under_another_mention_is_left_out(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("RT @alice: So happy today!! https://t.co/abc\nso happy today with friends\n")
    result = transfer_set(str(path), None, None, {"train": ["x"], "test": ["@bob so happy today"]})
    assert result.texts == ["so happy today with friends"] and result.dropped["task_eval_same"] == 1


def test_a_limited_transfer_set_is_the_same_prefix_every_time(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("\n".join(f"text number {i} of the pool" for i in range(200)) + "\n")
    first = transfer_set(str(path), None, 20, {"train": ["x"]}).texts
    assert first == transfer_set(str(path), None, 20, {"train": ["x"]}).texts
    assert first == transfer_set(str(path), None, 50, {"train": ["x"]}).texts[:20]
    assert first != [f"text number {i} of the pool" for i in range(20)]  # shuffled, not the file's order


def test_texts_without_words_are_told_apart_and_excluded_one_by_one(tmp_path):
    """An emoji-only text has no words to key on: it keys on itself, so two different ones are not
    duplicates, and a held-out one excludes only itself, not every text without words."""
    from tweetcls.distill.transfer_set import near_duplicate_key

    assert near_duplicate_key("😂😂") != near_duplicate_key("🔥") != near_duplicate_key("!!!")
    path = tmp_path / "pool.txt"
    path.write_text("😂😂\n🔥🔥🔥\n🙏\nsome words here\n🙏\n", encoding="utf-8")
    got = transfer_set(str(path), None, None, {"train": ["x"], "test": ["🙏"]})
    assert sorted(got.texts) == sorted(["😂😂", "🔥🔥🔥", "some words here"])
    assert got.dropped["task_eval_same"] == 2 and got.dropped["duplicate"] == 0

"""Masked-LM continued pretraining: the masking recipe, a corpus without evaluation text, an
MLM run that learns, and an adapted encoder that train.py fine-tunes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tweetcls.commands import pretrain
from tweetcls.commands import train
from conftest import FILLER, make_texts
from tweetcls.mlm.masking import IGNORE, NO_WORD, WholeWordMasking
from tweetcls.core.build import load_tokenizer


def synthetic_batch(rows: int = 400, width: int = 40, seed: int = 0):
    """Ids of ordinary tokens with words of 1-3 tokens, [CLS]/[SEP] at the ends, padding after."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 60, (rows, width), generator=gen)
    words = torch.full((rows, width), NO_WORD)
    for r in range(rows):
        length = int(torch.randint(10, width, (1,), generator=gen))
        pos, word = 1, 0
        while pos < length - 1:
            span = min(int(torch.randint(1, 4, (1,), generator=gen)), length - 1 - pos)
            words[r, pos:pos + span] = word
            pos, word = pos + span, word + 1
        ids[r, 0], ids[r, length - 1], ids[r, length:] = 2, 3, 0  # [CLS], [SEP], [PAD]
    return ids, words


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


def test_masking_targets_fifteen_percent_of_word_tokens_in_whole_words(tokenizer):
    ids, words = synthetic_batch()
    torch.manual_seed(0)
    masked, labels = WholeWordMasking(tokenizer, 0.15).mask(ids, words)
    target = labels != IGNORE
    assert not target[words == NO_WORD].any()  # special tokens and padding are never targets
    assert torch.equal(labels[target], ids[target])  # a target's label is its original token
    share = target[words != NO_WORD].float().mean()
    assert 0.13 < share < 0.17
    for r in range(len(words)):  # a word is chosen whole: its tokens all are targets, or none is
        for w in words[r].unique():
            if w != NO_WORD:
                flags = target[r][words[r] == w]
                assert flags.all() or not flags.any()


def test_masking_replaces_eighty_percent_randomises_ten_and_keeps_ten(tokenizer):
    ids, words = synthetic_batch(rows=2000)
    torch.manual_seed(1)
    masking = WholeWordMasking(tokenizer, 0.15)
    masked, labels = masking.mask(ids, words)
    target = labels != IGNORE
    n = target.sum().item()
    as_mask = (masked[target] == tokenizer.mask_token_id).float().sum() / n
    kept = (masked[target] == ids[target]).float().sum() / n
    other = 1 - as_mask - kept
    assert 0.77 < as_mask < 0.83 and 0.08 < kept < 0.12 + 0.01 and 0.08 < other < 0.12
    assert torch.equal(masked[~target], ids[~target])  # nothing else changes
    randomised = masked[target & (masked != tokenizer.mask_token_id) & (masked != ids)]
    assert not set(randomised.tolist()) & set(tokenizer.all_special_ids)  # random tokens are ordinary ones


def test_the_tokenizers_word_boundaries_keep_wordpieces_together(tokenizer):
    from tweetcls.mlm.masking import word_ids_of

    encoded = tokenizer(["sunshine unbelievablyquietriver"], truncation=True, max_length=32)
    word_ids = word_ids_of(encoded, 0)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert word_ids[0] == word_ids[-1] == NO_WORD  # [CLS] and [SEP]
    for i, token in enumerate(tokens):
        if token.startswith("##"):
            assert word_ids[i] == word_ids[i - 1] != NO_WORD


def test_the_tweet_corpus_holds_no_evaluation_text_and_no_duplicate(shared_data):
    from tweetcls.datamodules.corpus import EVALUATION_SOURCES, build_corpus, evaluation_texts, normalised

    corpus = build_corpus(["tweets"], shared_data)
    keys = [normalised(t) for t in corpus.texts]
    assert len(keys) == len(set(keys)) > 70_000
    assert corpus.checked_against == list(EVALUATION_SOURCES)
    held_out = evaluation_texts(shared_data, list(EVALUATION_SOURCES))
    assert not set(keys) & held_out
    assert corpus.evaluation_overlap > 0  # there were some, and they were taken out
    report = corpus.report()
    assert report["texts"] == len(corpus.texts) == sum(report["per_source"].values())
    assert report["per_source"]["tweet_eval/emoji"] > 40_000


def test_a_text_file_corpus_drops_evaluation_texts_of_the_data_dir(tmp_path):
    from tweetcls.datamodules.corpus import build_corpus

    data = tmp_path / "data" / "tweet_eval" / "emotion"
    data.mkdir(parents=True)
    (data / "mapping.txt").write_text("0\tanger\n1\tjoy\n")
    for stem, texts in (("train", ["train one", "train two"]), ("val", ["A val  tweet"]), ("test", ["a test tweet"])):
        (data / f"{stem}_text.txt").write_text("\n".join(texts) + "\n")
        (data / f"{stem}_labels.txt").write_text("\n".join("0" for _ in texts) + "\n")
    mine = tmp_path / "mine.txt"
    mine.write_text("a val tweet\nsomething new\nSomething  new\nA TEST TWEET\n")
    corpus = build_corpus([str(mine)], tmp_path / "data")
    assert corpus.texts == ["something new"]
    assert corpus.evaluation_overlap == 2 and corpus.duplicates == 1


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "texts.txt"
    path.write_text("\n".join(text for text, _ in make_texts(400, seed=3)) + "\n")
    return path


def run_pretrain(tiny_model_dir, corpus_file, out, *extra) -> dict:
    assert pretrain.main(["--model", str(tiny_model_dir), "--mlm-data", str(corpus_file), "--data-dir", str(out),
                          "--output-dir", str(out), "--run-name", "mlm", "--heldout", "64", "--batch-size", "16",
                          "--lr", "1e-3", "--max-epochs", "2", "--no-progress-bar", *extra]) == 0
    return json.loads((out / "mlm" / "results.json").read_text())


@pytest.fixture(scope="module")
def mlm_run(tiny_model_dir, corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("mlm")
    return out, run_pretrain(tiny_model_dir, corpus_file, out)


def test_an_mlm_run_lowers_its_heldout_loss(mlm_run):
    _, results = mlm_run
    losses = results["heldout_mlm_loss_per_epoch"]
    assert len(losses) == 2 and results["mlm_head_created"]
    assert losses[1] < losses[0] < results["heldout_mlm_loss_before"] - 0.2  # 40 words repeated: easy to learn
    assert results["corpus"]["texts"] == 400 - 64 + 64 and results["train_texts"] == 400 - 64


def test_the_adapted_encoder_is_saved_and_fine_tunes(mlm_run, tiny_model_dir, tiny_csv, tmp_path):
    out, _ = mlm_run
    saved = load_file(str(out / "mlm" / "model" / "model.safetensors"))
    original = load_file(str(tiny_model_dir / "model.safetensors"))
    assert set(saved) == set(original)  # an encoder as it came, pooler included, no MLM head
    name = next(k for k in saved if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.equal(saved[name], original[name])  # and it was trained
    assert train.main(["--model", str(out / "mlm" / "model"), "--dataset", str(tiny_csv), "--output-dir",
                       str(tmp_path), "--run-name", "cls", "--max-epochs", "1", "--batch-size", "16",
                       "--no-progress-bar"]) == 0
    results = json.loads((tmp_path / "cls" / "results.json").read_text())
    assert results["test"]["task_metric"] > 0


def test_lora_mlm_trains_adapters_and_head_and_saves_them_merged(tiny_model_dir, corpus_file, tmp_path):
    from tweetcls.mlm.encoder import masked_lm_for

    args = pretrain.parse_args(["--model", str(tiny_model_dir), "--lora", "--run-name", "x"])
    model, info = pretrain.build(args, tiny_model_dir)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or not n.startswith(model.base_model_prefix + ".") for n in trainable)
    assert not model.get_input_embeddings().weight.requires_grad  # the tied decoder stays the embedding table
    assert any(n.startswith("cls.") for n in trainable)
    results = run_pretrain(tiny_model_dir, corpus_file, tmp_path, "--lora", "--max-epochs", "1")
    assert results["method"] == "mlm-lora" and results["params_trainable"] < results["params_total"]
    saved = load_file(str(tmp_path / "mlm" / "model" / "model.safetensors"))
    assert not any("lora" in k for k in saved)
    plain, _ = masked_lm_for(tiny_model_dir)
    name = next(k for k in saved if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.equal(saved[name], plain.base_model.state_dict()[name.removeprefix("bert.")])


def test_during_the_head_warmup_only_the_mlm_head_learns(tiny_model_dir, corpus_file, tmp_path):
    """--head-warmup-steps longer than the run: the encoder comes out exactly as it went in
    (word embeddings included: the decoder is tied to them) while the head lowers the loss."""
    results = run_pretrain(tiny_model_dir, corpus_file, tmp_path, "--head-warmup-steps", "1000", "--max-epochs", "1",
                           "--lr", "1e-2")
    saved = load_file(str(tmp_path / "mlm" / "model" / "model.safetensors"))
    original = load_file(str(tiny_model_dir / "model.safetensors"))
    assert all(torch.equal(saved[name], original[name]) for name in original)
    assert results["heldout_mlm_loss_per_epoch"][0] < results["heldout_mlm_loss_before"] - 0.1


def test_after_the_head_warmup_the_encoder_learns(tiny_model_dir, corpus_file, tmp_path):
    results = run_pretrain(tiny_model_dir, corpus_file, tmp_path, "--head-warmup-steps", "5", "--max-epochs", "1")
    assert results["steps"] > 5
    saved = load_file(str(tmp_path / "mlm" / "model" / "model.safetensors"))
    original = load_file(str(tiny_model_dir / "model.safetensors"))
    name = next(k for k in saved if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.equal(saved[name], original[name])


@pytest.mark.parametrize("extra, message", [
    (["--mlm-data", "missing.txt"], "--mlm-data missing.txt: no such file"),
    (["--mlm-probability", "1.5"], "--mlm-probability must be a number in"),
    (["--heldout", "100000"], "--heldout must be from 1 to"),
    (["--head-warmup-steps", "-1"], "--head-warmup-steps must be an integer >= 0"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_model_dir, corpus_file, tmp_path, capsys, extra, message):
    argv = ["--model", str(tiny_model_dir), "--mlm-data", str(corpus_file), "--data-dir", str(tmp_path),
            "--output-dir", str(tmp_path), "--no-progress-bar", *extra]
    assert pretrain.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_mlm_checkpoint_restores_the_heldout_curve_and_the_random_streams():
    """--resume continues the held-out loss curve and the RNG streams that draw masks and dropout."""
    import random
    from types import SimpleNamespace

    from tweetcls.mlm.module import MaskedLMModule

    saved = MaskedLMModule(torch.nn.Linear(2, 2))
    saved.heldout_losses = [4.0, 3.5]
    checkpoint = {"state_dict": {}}
    torch.manual_seed(7)
    random.seed(7)
    saved.on_save_checkpoint(checkpoint)
    expected = (torch.rand(3), random.random())  # what the interrupted run would have drawn next

    resumed = MaskedLMModule(torch.nn.Linear(2, 2))
    resumed._trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"))
    torch.manual_seed(0)
    random.seed(0)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.heldout_losses == [4.0, 3.5]
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]
    old = MaskedLMModule(torch.nn.Linear(2, 2))
    old.on_load_checkpoint({"state_dict": {}})  # a checkpoint without the curve or the streams
    assert old.heldout_losses == []


def test_unlabelled_text_refuses_to_give_a_label_set():
    from tweetcls.mlm.data import MaskedLMDataModule

    with pytest.raises(TypeError, match="^unlabelled text has no label set$"):
        MaskedLMDataModule.load(None)


def test_masks_come_from_the_given_generator_not_the_global_rng(tokenizer):
    ids, words = synthetic_batch(rows=50)
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)  # a different global state each time
        masking = WholeWordMasking(tokenizer, 0.15, generator=torch.Generator().manual_seed(5))
        draws.append(masking.mask(ids, words))
    assert torch.equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])


def test_the_heldout_slice_is_masked_the_same_in_every_run_and_texts_are_truncated(tokenizer):
    from tweetcls.mlm.data import MaskedLMDataModule

    texts = [" ".join(FILLER * 10)] + [text for text, _ in make_texts(60, seed=4)]  # the first far over max_length
    modules = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        module = MaskedLMDataModule(texts, tokenizer, heldout=20, max_length=16, batch_size=8, max_train_samples=30)
        module.setup()
        modules.append(module)
    first, second = (m.encoded["validation"] for m in modules)
    assert first["input_ids"] == second["input_ids"] and first["labels"] == second["labels"]
    assert any(label != IGNORE for row in first["labels"] for label in row)  # it holds targets
    assert len(modules[0].texts["train"]) == 30  # --max-train-samples
    assert max(modules[0].lengths["train"] + modules[0].lengths["validation"]) == 16


def test_a_model_without_a_masked_lm_form_is_a_usage_error_naming_an_encoder(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from tweetcls.mlm.encoder import masked_lm_for
    from tweetcls.core.errors import UsageError

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=50, n_positions=16)).save_pretrained(tmp_path)
    with pytest.raises(UsageError) as caught:
        masked_lm_for(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{tmp_path} has no masked-LM form")
    assert message.endswith("use an encoder such as minilm-l6 or mpnet-base")

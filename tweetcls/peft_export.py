"""A LoRA adapter of this project in peft's own format, so that peft users can take it into
their tools: ``PeftModel.from_pretrained(base_model, folder)`` on the plain base gives this
project's logits.

Only files are rewritten (no peft import): tensor names get peft's prefix and ``.weight``
suffix, the head becomes ``modules_to_save``, and the config speaks peft's keys. A plain
base model classifies from the first token, so a mean-pooled run is refused: its adapter on
a plain base would give other predictions without an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from tweetcls.lora.adapter_io import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from tweetcls.core.atomic import atomic_directory
from tweetcls.core.errors import UsageError
from tweetcls.review.hub_card import CARD_FILE, model_card
from tweetcls.core.resolve import MODEL_TABLE
from tweetcls.core.results_file import RESULTS_FILE, read_results

PEFT_PREFIX = "base_model.model."


def peft_state_dict(tensors: dict) -> dict:
    """Our names -> peft's: ``x.lora_A`` -> ``base_model.model.x.lora_A.weight``; head tensors keep theirs."""
    out = {}
    for name, tensor in tensors.items():
        if name.endswith((".lora_A", ".lora_B")):
            out[f"{PEFT_PREFIX}{name}.weight"] = tensor
        else:
            out[f"{PEFT_PREFIX}{name}"] = tensor
    return out


def export_peft(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir`` (adapter_config.json + adapter_model.safetensors in peft's format)."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / ADAPTER_CONFIG).is_file() or not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise UsageError(f"{adapter_dir} holds no LoRA adapter ({ADAPTER_CONFIG}, {ADAPTER_WEIGHTS}); "
                         "only LoRA runs (--method lora) export to peft")
    ours = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    if ours.get("method") == "qlora":
        raise UsageError("a qlora adapter was trained on an int8 copy of its base: peft would put it on the fp32 "
                         "base and give other logits; export the merged model (ONNX) instead")
    if ours.get("pooling") == "mean":
        raise UsageError("this run classifies from the mean of all tokens; peft on a plain base model reads the "
                         "first token and would give other predictions without an error. Use its model/ "
                         "(transformers, trust_remote_code=True) or --format onnx, or train with --pooling cls "
                         "for an adapter that peft can take")
    base = ours.get("base_model")
    base = MODEL_TABLE[base].hub_id if base in MODEL_TABLE else (ours.get("base_model_path") or base)
    config = {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": base,
        "r": ours["r"], "lora_alpha": ours["alpha"], "lora_dropout": ours.get("dropout", 0.0),
        "use_rslora": ours.get("use_rslora", False), "target_modules": ours["target_modules"],
        "modules_to_save": ours.get("head_modules", []), "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True,
    }
    tensors = peft_state_dict(load_file(str(adapter_dir / ADAPTER_WEIGHTS)))
    with atomic_directory(out_dir, "peft") as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "adapter_model.safetensors"))
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
        (tmp / "tweetcls.json").write_text(json.dumps({
            "label_names": ours.get("label_names"), "multi_label": ours.get("multi_label", False),
            "pooling": ours.get("pooling"), "threshold": ours.get("threshold"),
            "temperature": ours.get("temperature")}, indent=2))
        run = read_results(adapter_dir.parent) if (adapter_dir.parent / RESULTS_FILE).is_file() else \
            ours | {"model": ours.get("base_model")}
        (tmp / CARD_FILE).write_text(model_card(run, "peft", str(out_dir)))
    return out_dir

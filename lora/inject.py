"""Put LoRALinear layers into a Hugging Face model and take them out again."""

from __future__ import annotations

from torch import nn

from tweetcls.core.errors import UsageError
from tweetcls.lora.layer import LoRALinear, check_lora_hyperparameters
from tweetcls.core.surgery import architecture, head_module_names, is_inside, replace_module

# Attention query and value projections per model type: the original LoRA recipe.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "mpnet": ["q", "v"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "llama": ["q_proj", "v_proj"],
}
ALL_LINEAR = "all-linear"


def default_targets(model: nn.Module) -> list[str]:
    """The query/value projection names for this model's type."""
    model_type = architecture(model)
    if model_type not in DEFAULT_TARGETS:
        raise UsageError(
            f"no default LoRA targets for model type {model_type!r}; "
            f"pass --lora-targets (e.g. --lora-targets {ALL_LINEAR})"
        )
    return list(DEFAULT_TARGETS[model_type])


def _matches(name: str, pattern: str) -> bool:
    # Suffix match on whole dotted components: "value" matches "...attention.self.value".
    return name == pattern or name.endswith("." + pattern)


def find_target_linears(model: nn.Module, targets: list[str]) -> list[str]:
    """Names of the nn.Linear modules that ``targets`` select, in model order."""
    heads = head_module_names(model)
    linears = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not is_inside(name, heads)
    ]
    if targets == [ALL_LINEAR]:
        return linears
    chosen: list[str] = []
    for pattern in targets:
        hits = [name for name in linears if _matches(name, pattern)]
        if not hits:
            leaf_names = sorted({n.split(".")[-1] for n in linears})
            raise UsageError(
                f"LoRA target {pattern!r} matches no linear layer; available: "
                f"{', '.join(leaf_names)} (or {ALL_LINEAR})"
            )
        chosen.extend(h for h in hits if h not in chosen)
    order = {name: i for i, name in enumerate(linears)}
    return sorted(chosen, key=order.__getitem__)


def inject_lora(
    model: nn.Module,
    targets: list[str] | None = None,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    use_rslora: bool = False,
) -> list[str]:
    """Replace each targeted nn.Linear by a LoRALinear wrapping it; returns their names."""
    check_lora_hyperparameters(r, alpha, dropout)
    names = find_target_linears(model, targets or default_targets(model))
    for name in names:
        replace_module(model, name, LoRALinear(model.get_submodule(name), r, alpha, dropout, use_rslora))
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def mark_only_lora_as_trainable(model: nn.Module, train_head: bool = True) -> None:
    """Freeze everything but the LoRA factors (and, by default, the classification head)."""
    heads = head_module_names(model) if train_head else []
    for name, param in model.named_parameters():
        is_lora = name.endswith(".lora_A") or name.endswith(".lora_B")
        param.requires_grad_(is_lora or is_inside(name, heads))


def merge_lora(model: nn.Module) -> nn.Module:
    """Swap every LoRALinear for a plain nn.Linear holding W + s B A (in place).

    The result is an ordinary model: ``save_pretrained`` writes weights that any
    transformers install loads without this package.
    """
    for name, layer in lora_layers(model).items():
        replace_module(model, name, layer.merged_linear())
    return model

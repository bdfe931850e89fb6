"""Knowledge-distillation losses (Hinton et al., 2015) and their multi-label analogue."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.5,
    multi_label: bool = False,
    has_label: torch.Tensor | None = None,
) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y).

    The T^2 factor keeps the soft term's gradients the same size whatever T is. For
    multi-label data each label is its own Bernoulli: the soft term is the binary
    cross-entropy against sigmoid(z_t/T) minus the teacher's entropy (i.e. a KL per label),
    and the hard term is BCE against the 0/1 targets.

    ``has_label`` (1/0 per example) marks transfer-set rows whose ``labels`` are placeholders:
    they get the soft term only, and the hard term averages over the labelled rows.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    t = temperature
    if multi_label:
        p_t = torch.sigmoid(teacher_logits / t)
        soft = (F.binary_cross_entropy_with_logits(student_logits / t, p_t)
                - F.binary_cross_entropy(p_t, p_t)) * t * t
        hard = F.binary_cross_entropy_with_logits(student_logits, labels.float(), reduction="none").mean(dim=-1)
    else:
        soft = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                        reduction="batchmean", log_target=True) * t * t
        hard = F.cross_entropy(student_logits, labels, reduction="none")
    if has_label is None:
        hard = hard.mean()
    else:
        weight = has_label.to(hard.dtype)
        hard = (hard * weight).sum() / weight.sum().clamp(min=1.0)
    return alpha * soft + (1.0 - alpha) * hard


def hidden_state_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Mean over unmasked positions of (1 - cos) or MSE between matched hidden states."""
    mask = mask.to(student.dtype)
    if kind == "cosine":
        per_token = 1.0 - F.cosine_similarity(student, teacher, dim=-1)
    elif kind == "mse":
        per_token = (student - teacher).pow(2).mean(dim=-1)
    else:
        raise ValueError(f"hidden loss must be 'cosine' or 'mse', got {kind!r}")
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)

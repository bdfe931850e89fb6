"""Match a student's tokens to a teacher's tokens of the same text by character offsets.

Two tokenizers split "I ❤️ Zürich https://t.co/x" differently; both fast tokenizers
report for each token the characters it covers (``return_offsets_mapping``). Each student
token is paired with every teacher token whose character span overlaps its own, and the
teacher states of those tokens are mean-pooled into one target. Special tokens cover no
characters and are mapped explicitly: the student's first special token (``[CLS]``) to the
teacher's first, its last (``[SEP]``) to the teacher's last. A student token with no
counterpart (the teacher truncated the text earlier, or has no such special token) is
masked out of the loss.
"""

from __future__ import annotations

import torch


def _is_special(offsets: list[tuple[int, int]], special_mask: list[int], i: int) -> bool:
    start, end = offsets[i]
    return bool(special_mask[i]) or start == end


def alignment_matrix(
    student_offsets: list[tuple[int, int]],
    student_special: list[int],
    teacher_offsets: list[tuple[int, int]],
    teacher_special: list[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [S, T] whose rows average the matched teacher tokens, mask [S]) for one text."""
    s_len, t_len = len(student_offsets), len(teacher_offsets)
    weights = torch.zeros(s_len, t_len)
    t_regular = [j for j in range(t_len) if not _is_special(teacher_offsets, teacher_special, j)]
    t_special = [j for j in range(t_len) if _is_special(teacher_offsets, teacher_special, j)]
    s_special = [i for i in range(s_len) if _is_special(student_offsets, student_special, i)]
    for i in range(s_len):
        if i in s_special:
            continue
        start, end = student_offsets[i]
        hits = [j for j in t_regular if teacher_offsets[j][0] < end and start < teacher_offsets[j][1]]
        if hits:
            weights[i, hits] = 1.0 / len(hits)
    if s_special and t_special:
        first_s, first_t = s_special[0], t_special[0]
        if first_s == 0 and first_t == 0:  # leading [CLS] / <s>
            weights[first_s, first_t] = 1.0
        last_s, last_t = s_special[-1], t_special[-1]
        if last_s == s_len - 1 and last_t == t_len - 1 and last_s != first_s:  # trailing [SEP] / </s>
            weights[last_s, last_t] = 1.0
    mask = weights.sum(dim=1) > 0
    return weights, mask


def align_batch(student_encoding, teacher_encoding) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched alignment for two ``BatchEncoding``s of the same texts (offsets and
    special-token masks requested), padded to their own lengths: weights [B, S, T], mask [B, S]."""
    s_ids, t_ids = student_encoding["input_ids"], teacher_encoding["input_ids"]
    batch, s_max, t_max = len(s_ids), len(s_ids[0]), len(t_ids[0])
    weights = torch.zeros(batch, s_max, t_max)
    mask = torch.zeros(batch, s_max, dtype=torch.bool)
    for b in range(batch):
        s_att = [int(x) for x in student_encoding["attention_mask"][b]]
        t_att = [int(x) for x in teacher_encoding["attention_mask"][b]]
        s_n, t_n = sum(s_att), sum(t_att)
        s_pos = [i for i, a in enumerate(s_att) if a]
        t_pos = [j for j, a in enumerate(t_att) if a]
        w, m = alignment_matrix(
            [tuple(int(v) for v in student_encoding["offset_mapping"][b][i]) for i in s_pos],
            [int(student_encoding["special_tokens_mask"][b][i]) for i in s_pos],
            [tuple(int(v) for v in teacher_encoding["offset_mapping"][b][j]) for j in t_pos],
            [int(teacher_encoding["special_tokens_mask"][b][j]) for j in t_pos],
        )
        weights[b][torch.tensor(s_pos)[:, None], torch.tensor(t_pos)[None, :]] = w
        mask[b, torch.tensor(s_pos)] = m
        assert w.shape == (s_n, t_n)
    return weights, mask


def aligned_teacher_states(weights: torch.Tensor, teacher_states: torch.Tensor) -> torch.Tensor:
    """Teacher hidden states pooled onto the student's tokens: [B, S, T] @ [B, T, H]."""
    return torch.bmm(weights.to(teacher_states.dtype), teacher_states)

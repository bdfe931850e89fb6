"""Unlabelled texts that the student learns from through the teacher's soft labels alone.

With 3,257 labelled tweets, the teacher's logits on those same tweets add little over the
labels (RESULTS.md, suite 3). A transfer set (Hinton et al., 2015; DistilBERT/TinyBERT's
augmented data) gives the soft-label term examples the labels never cover: other tweets
from the same platform, e.g. TweetEval emoji's 45k training tweets.
"""

from __future__ import annotations

import random
from pathlib import Path

from tweetcls_core.errors import UsageError
from datamodules.corpus import source_texts
from datamodules.sources import SPLIT_SEED


def transfer_texts(source: str, data_dir: str | Path | None, limit: int | None, exclude: set[str]) -> list[str]:
    """Up to ``limit`` distinct texts from ``source`` not in ``exclude``, in a fixed shuffled order.

    ``source`` is a .txt file (one text per line) or any dataset ``--dataset`` accepts, whose
    training split is used (never its val/test: they may be another benchmark's test set).
    ``exclude`` should hold the target task's texts, so no test tweet is seen through the teacher.
    """
    texts = source_texts(source, data_dir, "--transfer-data")
    seen = {t.strip() for t in exclude}
    kept = []
    for text in texts:
        key = text.strip()
        if key and key not in seen:
            seen.add(key)
            kept.append(key)
    random.Random(SPLIT_SEED).shuffle(kept)
    if not kept:
        raise UsageError(f"--transfer-data {source} has no texts outside the training task's own")
    return kept[:limit] if limit else kept

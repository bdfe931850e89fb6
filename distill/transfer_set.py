"""Unlabelled texts that the student learns from through the teacher's soft labels alone.

With 3,257 labelled tweets, the teacher's logits on those same tweets add little over the
labels (RESULTS.md, suite 3). A transfer set (Hinton et al., 2015; DistilBERT/TinyBERT's
augmented data) gives the soft-label term examples the labels never cover: other tweets
from the same platform. ``--transfer-data pool`` takes all of them: every split of every
offline tweet dataset and GoEmotions' Reddit comments (another task's test split is not this
task's: a student of emotion is never scored on hate's tweets).

No text of the training task itself gets in, and no near-duplicate of its validation or
test texts: compared after lower-casing and dropping URLs, @mentions, a leading "RT" and
punctuation, and a text that shares a run of ``SHINGLE_WORDS`` words with one of them is
dropped too (a retweet with a comment, a quote). What was dropped, and why, is counted.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from tweetcls.datamodules.corpus import TWEET_SOURCES, local_sources, source_texts
from tweetcls.datamodules.sources import SPLIT_SEED, load_labelled_data
from tweetcls.core.errors import UsageError

POOL = "pool"  # --transfer-data pool: every offline short text below
POOL_SOURCES = (*TWEET_SOURCES, "go_emotions")
SHINGLE_WORDS = 6
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_WORD = re.compile(r"\w+")


def near_duplicate_key(text: str) -> str:
    """The words of a text, lower-cased, without URLs, @mentions and a leading RT; a text with
    no words (emoji only) keys on itself."""
    words = _WORD.findall(_MENTION.sub(" ", _URL.sub(" ", text.lower())))
    if words[:1] == ["rt"]:
        words = words[1:]
    return " ".join(words) if words else text.strip()


def shingles(key: str) -> set[str]:
    """Every run of SHINGLE_WORDS consecutive words of a key (none for shorter texts)."""
    words = key.split()
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


@dataclass
class TransferSet:
    texts: list[str]
    candidates: int = 0  # texts read before filtering
    per_source: dict[str, int] = field(default_factory=dict)  # texts read from each source
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("empty", "duplicate", "task_text", "task_eval_same", "task_eval_near"), 0))

    def report(self, source: str) -> dict:
        return {"data": source, "texts": len(self.texts), "candidates": self.candidates,
                "per_source": self.per_source, "dropped": self.dropped}


def candidate_texts(source: str, data_dir: str | Path | None, encoding: str = "utf-8") -> dict[str, list[str]]:
    """source -> its texts: for ``pool`` every split of every pool dataset the data directory has,
    else a .txt file or a dataset's training split (a file read in ``encoding``)."""
    if source != POOL:
        return {source: source_texts(source, data_dir, "--transfer-data", encoding=encoding)}
    found = local_sources(data_dir, POOL_SOURCES)
    if not found:
        raise UsageError("--transfer-data pool: no offline datasets found; pass --data-dir (or set TWEETCLS_DATA_DIR)")
    return {name: [t for split in load_labelled_data(name, data_dir).splits.values() for t in split["text"]]
            for name in found}


def transfer_set(source: str, data_dir: str | Path | None, limit: int | None,
                 task_texts: dict[str, list[str]], encoding: str = "utf-8") -> TransferSet:
    """Up to ``limit`` texts from ``source`` in one fixed shuffled order (a smaller limit takes a
    prefix of a larger one's), without the task's own texts (``task_texts``: split -> texts) or
    near-duplicates of its validation and test texts."""
    own = {near_duplicate_key(t) for texts in task_texts.values() for t in texts}
    held_out = {near_duplicate_key(t) for split in ("validation", "test") for t in task_texts.get(split, [])}
    held_out_runs = set().union(*(shingles(key) for key in held_out))
    result, seen = TransferSet([]), set()
    for name, texts in candidate_texts(source, data_dir, encoding).items():
        result.per_source[name] = len(texts)
        result.candidates += len(texts)
        for text in texts:
            text = text.strip()
            key = near_duplicate_key(text)
            reason = ("empty" if not text else "task_eval_same" if key in held_out
                      else "task_eval_near" if not shingles(key).isdisjoint(held_out_runs)
                      else "task_text" if key in own else "duplicate" if key in seen else None)
            if reason:
                result.dropped[reason] += 1
            else:
                seen.add(key)
                result.texts.append(text)
    if not result.texts:
        raise UsageError(f"--transfer-data {source} has no texts outside the training task's own")
    random.Random(SPLIT_SEED).shuffle(result.texts)
    if limit:
        result.texts = result.texts[:limit]
    return result

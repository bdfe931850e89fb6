"""Unlabelled text: from a file or a dataset's training split, and the tweet corpus for
domain-adaptive masked-LM training.

The tweet corpus is the training texts of every tweet task here (the six TweetEval tasks,
disaster and COVID tweets), deduplicated, with every text that occurs in any evaluation
split (validation or test) of any dataset here removed: an encoder adapted on it has never
read a tweet it will be scored on. Texts are compared after lower-casing and collapsing
whitespace, so a retweet with other spacing does not slip through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tweetcls.datamodules.sources import STANCE_TARGETS, default_data_dir, load_labelled_data, read_lines
from tweetcls.core.errors import UsageError

TWEET_SOURCES = (*(f"tweet_eval/{task}" for task in ("emotion", "hate", "irony", "offensive", "emoji")),
                 *(f"tweet_eval/stance/{target}" for target in STANCE_TARGETS), "disaster_tweets", "covid_tweets")
EVALUATION_SOURCES = (*TWEET_SOURCES, "go_emotions", "sst2", "imdb")
TWEETS = "tweets"  # the name of the default corpus


def source_texts(source: str, data_dir: str | Path | None, option: str, loaded: dict | None = None,
                 encoding: str = "utf-8") -> list[str]:
    """The texts of a .txt file (one per line), or the training split of a dataset ``--dataset``
    accepts (never its validation or test split). ``option`` names the flag in errors;
    ``loaded`` caches datasets already read; ``encoding`` is a file's (--encoding)."""
    if source.endswith(".txt"):
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{option} {source}: no such file")
        return read_lines(path, encoding)
    return list(_dataset(source, data_dir, loaded, encoding).splits["train"]["text"])


def _dataset(name: str, data_dir, loaded: dict | None, encoding: str = "utf-8"):
    if loaded is None:
        return load_labelled_data(name, data_dir, encoding=encoding)
    if name not in loaded:
        loaded[name] = load_labelled_data(name, data_dir, encoding=encoding)
    return loaded[name]


def normalised(text: str) -> str:
    return " ".join(text.split()).lower()


def local_sources(data_dir: str | Path | None, sources: tuple[str, ...] = EVALUATION_SOURCES) -> list[str]:
    """The datasets of ``sources`` that the data directory holds (default: $TWEETCLS_DATA_DIR)."""
    folder = Path(data_dir) if data_dir else default_data_dir()
    return [s for s in sources if folder is not None and (folder / s).is_dir()]


def evaluation_texts(data_dir: str | Path | None, sources: list[str], loaded: dict | None = None) -> set[str]:
    """Every validation and test text of ``sources``, normalised."""
    found = set()
    for source in sources:
        for split in ("validation", "test"):
            found |= {normalised(t) for t in _dataset(source, data_dir, loaded).splits[split]["text"]}
    return found


@dataclass
class Corpus:
    texts: list[str]
    per_source: dict[str, int] = field(default_factory=dict)  # texts each source added
    checked_against: list[str] = field(default_factory=list)  # datasets whose val/test texts were removed
    duplicates: int = 0  # dropped: already in the corpus
    evaluation_overlap: int = 0  # dropped: in an evaluation split

    def report(self) -> dict:
        return {"texts": len(self.texts), "per_source": self.per_source, "duplicates_dropped": self.duplicates,
                "evaluation_texts_dropped": self.evaluation_overlap, "evaluation_splits_of": self.checked_against}


def build_corpus(sources: list[str], data_dir: str | Path | None, option: str = "--mlm-data",
                 encoding: str = "utf-8") -> Corpus:
    """The texts of ``sources`` (``tweets`` = every tweet task's training texts), in order,
    deduplicated and without any text of an evaluation split of the datasets in the data
    directory (all of them, with ../shared/data); a .txt or data file is read in ``encoding``."""
    expanded = [s for source in sources for s in (TWEET_SOURCES if source == TWEETS else (source,))]
    loaded: dict = {}
    checked = local_sources(data_dir)
    held_out = evaluation_texts(data_dir, checked, loaded)
    corpus, seen = Corpus([], checked_against=checked), set()
    for source in expanded:
        added = 0
        for text in source_texts(source, data_dir, option, loaded, encoding):
            key = normalised(text)
            if not key:
                continue
            if key in held_out:
                corpus.evaluation_overlap += 1
            elif key in seen:
                corpus.duplicates += 1
            else:
                seen.add(key)
                corpus.texts.append(text.strip())
                added += 1
        corpus.per_source[source] = added
    if not corpus.texts:
        raise UsageError(f"{option} {' '.join(sources)}: no texts left outside the evaluation splits")
    return corpus

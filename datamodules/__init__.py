"""LightningDataModules over the ``datasets`` library for short-text classification.

Names load on first use (PEP 562), so reading a file with ``datamodules.files`` does not
import Lightning."""

from tweetcls.core.lazy import lazy_attributes

_WHERE = {"LabelledData": "tweetcls.datamodules.sources", "known_datasets": "tweetcls.datamodules.sources",
          "load_labelled_data": "tweetcls.datamodules.sources", "TextClassificationDataModule": "tweetcls.datamodules.text_classification"}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)

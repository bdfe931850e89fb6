"""LightningDataModules over the ``datasets`` library for short-text classification.

Names load on first use (PEP 562), so reading a file with ``datamodules.files`` does not
import Lightning."""

from tweetcls_core.lazy import lazy_attributes

_WHERE = {"LabelledData": "datamodules.sources", "known_datasets": "datamodules.sources",
          "load_labelled_data": "datamodules.sources", "TextClassificationDataModule": "datamodules.text_classification"}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)

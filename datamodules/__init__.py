"""LightningDataModules over the ``datasets`` library for short-text classification.

Names load on first use (PEP 562), so reading a file with ``datamodules.files`` does not
import Lightning."""

from importlib import import_module

_WHERE = {"LabelledData": "datamodules.sources", "known_datasets": "datamodules.sources",
          "load_labelled_data": "datamodules.sources", "TextClassificationDataModule": "datamodules.text_classification"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)

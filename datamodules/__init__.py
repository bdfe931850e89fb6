"""LightningDataModules over the ``datasets`` library for short-text classification."""

from datamodules.sources import LabelledData, known_datasets, load_labelled_data
from datamodules.text_classification import TextClassificationDataModule

__all__ = ["LabelledData", "TextClassificationDataModule", "known_datasets", "load_labelled_data"]

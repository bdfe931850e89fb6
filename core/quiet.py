"""Turn down library chatter a command-line user cannot act on."""

import logging
import os
import warnings


def quiet_libraries(load: bool = True) -> None:
    """``load=False``: only set what the libraries read when they are imported later (predict.py on
    an ONNX export never imports them, and importing them costs seconds)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' weight-loading bar too
    if load:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers")
    # Lightning warns on a mid-epoch resume unless the DataLoader object itself is stateful; ours
    # resumes through the datamodule's state (the sampler skips the batches already trained on;
    # tests/test_reliability.py proves the result bit-identical), so the warning says the opposite of what is true.
    warnings.filterwarnings("ignore", message=r".*dataloader is\s+not resumable")
    drop_lightning_tips()
    # ONNX Runtime's quantizer asks, on the root logger, for a pre-processing step the export makes no use of
    # (its shape inference is for models with unknown shapes): at serve.py's start it read as a fault
    logging.getLogger().addFilter(_DropMessage("consider to run pre-processing before quantization"))


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


class _DropMessage(logging.Filter):
    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        return self.words not in record.getMessage()


def drop_lightning_tips() -> None:
    """Lightning prints advertisements for its cloud services at INFO level."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_DropTips())

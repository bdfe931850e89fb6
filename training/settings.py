"""The settings of one training run, typed: what train.py, tune.py and pretrain.py hand to
training/pipeline.py, and what config.yaml and results.json's ``config`` record.

One field per flag of the command, with the flag's name (``--lora-r`` is ``lora_r``); the
help text of each is the flag's (``python train.py --help``). Settings are built only by a
command's parser (flags over ``--config`` YAML over a resumed run's config.yaml, every value
checked by its flag's domain: training/options.py's ``parse_args``, pretrain's ``parse_args``)
and changed only by ``with_options`` (each new value checked as its flag would be), so a
settings object always holds values the command line could have given. They are frozen: a
run cannot change what it records it was started with. tests/test_settings.py holds the
fields and the parsers equal.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TypeVar

from tweetcls.core.settings import Settings

S = TypeVar("S", bound="RunSettings")


@dataclass(frozen=True, kw_only=True)
class RunSettings(Settings):
    """What every Lightning run has: train.py's and pretrain.py's shared flags."""

    config: str | None  # the --config YAML file the values came from, if any
    model: str  # short name, hub id or folder of the model trained
    data_dir: str | None  # folder of the offline datasets (None: $TWEETCLS_DATA_DIR, else ../shared/data)
    encoding: str  # of a local data file or .txt corpus
    max_length: int  # tokens per text
    batch_size: int
    eval_batch_size: int
    lr: float  # peak learning rate
    weight_decay: float
    warmup_ratio: float  # share of the steps spent warming up, then linear decay
    max_epochs: int
    max_steps: int  # -1: the epochs decide
    max_train_samples: int | None  # a fixed subset of the training texts
    patience: int  # epochs without a better val metric before stopping; 0: off
    seed: int
    fast_dropout: bool  # core/dropout.py's cheaper masks
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    lora_targets: str  # comma-separated layer names, or all-linear
    # the run folder (training/options.py's add_run_options)
    output_dir: str
    run_name: str | None  # None until pipeline.run names the run
    overwrite: bool  # replace a run folder this project wrote, never another
    resume: str | None  # the run folder to continue
    checkpoint_every_n_steps: int
    progress_bar: bool
    # the hardware, passed to lightning.Trainer
    accelerator: str
    devices: str
    strategy: str
    num_nodes: int
    node_timeout: float  # seconds a multi-node run waits for all nodes
    precision: str  # resolved: never "auto" once parsed
    num_workers: int

    def as_namespace(self) -> argparse.Namespace:
        return argparse.Namespace(**self.as_dict())

    def replace(self: S, **values) -> S:
        """A copy with ``values`` set, unchecked: for values the pipeline derives (the run's name);
        a user's or a search's values go through training/options.py's ``with_options``."""
        return dataclasses.replace(self, **values)


@dataclass(frozen=True, kw_only=True)
class TrainSettings(RunSettings):
    """train.py's settings: one classifier run."""

    method: str  # a key of training/options.py's METHODS
    pooling: str  # auto, cls or mean
    dataset: str  # a named dataset or a data file
    val_file: str | None
    test_file: str | None
    text_column: str
    label_column: str
    max_eval_samples: int | None
    val_check_interval: float  # share of an epoch between validations
    threshold: float  # multi-label decision threshold during training
    tune_threshold: bool  # multi-label: choose the threshold on val after training
    head_bias: str  # multi-label head's starting bias: prior or zero
    test: bool  # score the test split at the end (a search does not)
    lora_rslora: bool
    teacher: str | None  # distillation: run folder(s) or model(s), comma-separated
    layers: str | None  # distillation: which teacher blocks the student copies
    student: str | None  # distillation: an independent pretrained student
    kd_temperature: float
    kd_alpha: float  # weight of the teacher's soft labels
    hidden_loss: str  # none, cosine or mse
    hidden_weight: float
    transfer_data: str | None  # unlabelled texts learnt through the teacher only
    transfer_samples: int | None


@dataclass(frozen=True, kw_only=True)
class PretrainSettings(RunSettings):
    """pretrain.py's settings: one masked-language-model run."""

    mlm_data: list[str]  # tweets, dataset names, .txt files
    heldout: int  # texts held out for the per-epoch MLM loss
    mlm_probability: float  # share of words masked
    head_warmup_steps: int  # steps that train the MLM head alone
    lora: bool  # train LoRA factors and the head instead of every weight

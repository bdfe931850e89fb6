"""Lightning's hardware options (--accelerator, --devices, --strategy, --num-nodes, --precision)
checked against this machine when the command starts, and a multi-node run bounded in time.

Lightning checks these values only when the Trainer is built, after the data, the model and
the run folder: ``--precision foo`` was a traceback that left a run folder blocking the rerun,
``--devices 99`` on 2 cores started 98 training processes, and ``--num-nodes 2`` waited forever
for a node nobody started. Here Lightning's own checks run first, on a Trainer that is built
and thrown away (milliseconds), and what Lightning allows but this machine cannot do is refused.
"""

from __future__ import annotations

import os
from datetime import timedelta

from tweetcls.core.errors import UsageError
from tweetcls.training.settings import RunSettings

RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")  # what every node of a multi-node run needs


def cpu_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_hardware(args: RunSettings) -> None:
    """One UsageError line for a hardware option this machine cannot honour; nothing is created."""
    import logging
    import warnings

    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    import torch

    if args.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(f"--accelerator {args.accelerator}: this machine has no GPU that torch can use; "
                         "use --accelerator auto or cpu")
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    # "GPU available: ...", "Using bfloat16 ...": the real Trainer says it once, this one says nothing
    loggers = [logging.getLogger(f"lightning.{part}.utilities.rank_zero") for part in ("pytorch", "fabric")]
    def silence(record: logging.LogRecord) -> bool:
        return False
    for logger in loggers:
        logger.addFilter(silence)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = L.Trainer(accelerator=args.accelerator, devices=devices, strategy=args.strategy,
                                num_nodes=args.num_nodes, precision=args.precision, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    except (MisconfigurationException, ValueError, TypeError, RuntimeError, ImportError) as err:
        flag = which_flag(str(err))
        value = getattr(args, flag[2:].replace("-", "_"))
        raise UsageError(f"{flag} {value}: {first_line(err)}") from None
    finally:
        for logger in loggers:
            logger.removeFilter(silence)
    from tweetcls.core.precision import check_precision_honoured

    check_precision_honoured(args.precision, str(trainer.precision))
    from lightning.pytorch.accelerators import CPUAccelerator

    if isinstance(trainer.accelerator, CPUAccelerator) and trainer.num_devices > cpu_cores():
        raise UsageError(f"--devices {args.devices}: this machine has {cpu_cores()} CPU cores and each device is a "
                         f"training process; use at most --devices {cpu_cores()}")
    nodes = args.num_nodes
    if nodes > 1 and not trainer.strategy.cluster_environment.creates_processes_externally:
        missing = [name for name in RENDEZVOUS if not os.environ.get(name)]
        if missing:
            raise UsageError(f"--num-nodes {nodes} needs {', '.join(RENDEZVOUS)} set on every node (node 0's address, "
                             f"a free port on it, this node's number 0..{nodes - 1}); missing: {', '.join(missing)}")
        rank = os.environ["NODE_RANK"]
        if not rank.isdigit() or int(rank) >= nodes:
            raise UsageError(f"NODE_RANK={rank} with --num-nodes {nodes}: it must be an integer 0..{nodes - 1}")


def which_flag(message: str) -> str:
    """The option a Lightning message is about (it names Lightning's arguments, not our flags)."""
    lowered = message.lower()
    for word, flag in (("precision", "--precision"), ("strategy", "--strategy"), ("devices", "--devices"),
                       ("num_nodes", "--num-nodes"), ("accelerator", "--accelerator"), ("gpu", "--accelerator")):
        if word in lowered:
            return flag
    return "--accelerator"


def first_line(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]


def trainer_strategy(args: RunSettings):
    """--strategy for the Trainer: a multi-node DDP run waits at most --node-timeout seconds for
    the other nodes (Lightning's default is 30 minutes, then a traceback)."""
    nodes, timeout = args.num_nodes, args.node_timeout
    if nodes > 1 and timeout and args.strategy in ("auto", "ddp"):
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(timeout=timedelta(seconds=timeout))
    return args.strategy


def rendezvous_line(args: RunSettings, program: str = "train.py") -> str | None:
    """What a multi-node run waits for, said before it waits (None for one node)."""
    nodes, timeout = args.num_nodes, args.node_timeout
    if nodes <= 1 or not timeout:
        return None
    address = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
    return (f"{program}: node {os.environ.get('NODE_RANK')} of {nodes} waits up to {timeout:g} s for the "
            f"others at {address} (start {program} with the same options and NODE_RANK=0..{nodes - 1} on each node)")

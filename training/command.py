"""What a training command's main() does around its one run (train.py, pretrain.py): parse the
settings, run, and end every failure as one line with its exit code (2: the input, 1: the
machine, 130/143: a signal, with the way to resume)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

from tweetcls.core.errors import REPORTED, Interrupted, flags_of, report
from tweetcls.training.options import LORA_FLAGS
from tweetcls.training.settings import RunSettings


def run_command(program: str, argv: list[str] | None, parse: Callable[[list[str] | None], RunSettings],
                parser: Callable[[], argparse.ArgumentParser], body=None) -> tuple[int, dict | None]:
    """(exit code, what results.json holds or None): ``parse(argv)``, then ``pipeline.run`` with
    ``body`` (default: train.py's run); ``parser`` names the flags in an error line."""
    from tweetcls.core.quiet import quiet_libraries
    from tweetcls.training import pipeline

    started = time.time()  # results.json's wall_seconds: the whole command
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        settings = parse(argv)
        quiet_libraries()
        return 0, pipeline.run(settings, body=body, started=started)
    except REPORTED as err:  # bad input, a diverged loss, a full disk, any OSError: one line naming the path
        return report(program, err, flags_of(parser(), **LORA_FLAGS)), None
    except Interrupted as err:
        print(f"{program}: {err}", file=sys.stderr)
        return err.exit_code, None
    except KeyboardInterrupt:
        print(f"{program}: interrupted before training started; nothing to resume", file=sys.stderr)
        return 130, None

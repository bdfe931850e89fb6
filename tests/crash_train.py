"""Run train.py and SIGKILL the process after optimizer step K (or, with K = end, after
the last epoch, before the test), as a laptop lid or the OOM killer would: no cleanup, no
exception handlers.

    python tests/crash_train.py K|end -- <train.py flags>
"""

import os
import signal
import sys
from pathlib import Path

import lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tweetcls, not an installed copy
from tweetcls.core.quiet import quiet_libraries
from tweetcls.training import options as train_options
from tweetcls.training import pipeline


class KillAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.step == -1:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    step, flags = -1 if sys.argv[1] == "end" else int(sys.argv[1]), sys.argv[sys.argv.index("--") + 1:]
    quiet_libraries()
    pipeline.run(train_options.parse_args(flags), extra_callbacks=[KillAtStep(step)])

"""Run train.py and send this process a signal after optimizer step K, as a scheduler
(SIGTERM) or a user at the keyboard (SIGINT) would.

    python tests/signal_train.py TERM|INT K -- <train.py flags>
"""

import os
import signal
import sys
from pathlib import Path

import lightning as L

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tweetcls, not an installed copy
from tweetcls.commands import train
from tweetcls.training import pipeline


class SignalAtStep(L.Callback):
    def __init__(self, signum: int, step: int) -> None:
        self.signum, self.step, self.sent = signum, step, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


if __name__ == "__main__":
    name, step, flags = sys.argv[1], int(sys.argv[2]), sys.argv[sys.argv.index("--") + 1:]
    # a shell's background job (`pytest &`, nohup) starts with SIGINT ignored, and Python then
    # leaves it ignored: give this process the handler a terminal's Ctrl-C would meet
    signal.signal(signal.SIGINT, signal.default_int_handler)
    original_run = pipeline.run
    pipeline.run = lambda args, **kw: original_run(args, **kw, extra_callbacks=[SignalAtStep(getattr(signal, "SIG" + name), step)])
    sys.exit(train.main(flags))

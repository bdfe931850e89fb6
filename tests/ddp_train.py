"""Run train.py under 2-process DDP on CPU (gloo) and save each rank's final weights.

Launched by test_ddp.py as a plain subprocess: inside pytest, Lightning's launcher would
re-run pytest itself in the child process.

    python tests/ddp_train.py WEIGHTS_DIR -- <train.py flags>
"""

import sys
from pathlib import Path

import lightning as L
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tweetcls, not an installed copy
from tweetcls.core.quiet import quiet_libraries
from tweetcls.training import options as train_options
from tweetcls.training import pipeline


class SaveRankWeights(L.Callback):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_fit_end(self, trainer, pl_module) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().clone() for k, v in pl_module.state_dict().items()}
        save_file(state, str(self.folder / f"rank{trainer.global_rank}.safetensors"))


if __name__ == "__main__":
    weights_dir, flags = Path(sys.argv[1]), sys.argv[sys.argv.index("--") + 1:]
    quiet_libraries()
    pipeline.run(train_options.parse_args(flags), extra_callbacks=[SaveRankWeights(weights_dir)])

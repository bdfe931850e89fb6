"""Label texts with a teacher through distill/teacher_cache.py's Trainer.predict path on N CPU
processes (gloo DDP for N > 1) and save the logits rank 0 got back.

Launched by test_label_pool.py as a plain subprocess: inside pytest, Lightning's launcher would
re-run pytest itself in the child process.

    python tests/ddp_label_pool.py TEACHER_DIR OUT_FILE DEVICES TEXTS_FILE
"""

import sys
from pathlib import Path

from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tweetcls, not an installed copy
from tweetcls.distill import teacher_cache

if __name__ == "__main__":
    teacher, out, devices, texts_file = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    texts = texts_file.read_text().splitlines()
    teacher_cache.CHUNK = 7  # several chunks, each its own predict pass
    trainer = teacher_cache.labelling_trainer("cpu", devices=devices, strategy="ddp" if devices > 1 else "auto")
    logits, folder = teacher_cache.cached_teacher_logits(teacher, texts, ["a", "b", "c"], 32, trainer=trainer,
                                                         batch_size=2)
    if trainer.is_global_zero:
        save_file({"logits": logits.contiguous()}, str(out))
        print(trainer.world_size)
        print(folder)

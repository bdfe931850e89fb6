"""The project's one installed name; at its top, what train.py made: load any saved form of a trained classifier with one call.

    from tweetcls import load_run
    run = load_run("runs/tweet_eval-emotion-lora-minilm-l6-s0-20261126-101500")
    run.model, run.tokenizer, run.label_names, run.threshold

This package sits on top of the others (it reads LoRA adapters and int8 variants), so
the entry points that consume finished runs (evaluate.py, the experiments, prediction)
all load them the same way. Names load on first use (PEP 562): a Predictor on an ONNX
export never imports torch or transformers.
"""

from pathlib import Path as _Path

# The installed distribution claims one import name, `tweetcls`: setup.cfg's package_dir puts the
# repository's top-level folders under it (lora/ -> tweetcls.lora, core/ -> tweetcls.core, ...).
# In a source checkout those folders sit beside this one, so the package's search path takes in
# the checkout's root as well: `python train.py` works from a clone (installed or not) and
# imports the same `tweetcls.lora` the wheel has. An installed copy has no setup.cfg beside it.
_CHECKOUT = _Path(__file__).resolve().parent.parent
if (_CHECKOUT / "setup.cfg").is_file() and (_CHECKOUT / "core" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821  (a package's __path__)

from tweetcls.core.lazy import lazy_attributes  # noqa: E402  (needs the search path above)

_WHERE = {"LoadedRun": "tweetcls.loader", "load_run": "tweetcls.loader", "Predictor": "tweetcls.predictor"}
__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)

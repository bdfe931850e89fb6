"""The foundation every part of the project builds on, and that imports none of them.

Errors, run directories and the files a run leaves behind, model loading and building,
the Lightning classifier, model surgery, timing. ``lora/``, ``compress/``, ``datamodules/``
and ``distill/`` import from here; ``tweetcls/`` (loading finished runs) and the entry
points sit on top of all of them.
"""

"""Reviewing runs: the TensorBoard card, HPARAMS and pictures of a run (tensorboard.py), the table
that compares runs (compare.py), and the model card each saved form carries (hub_card.py)."""

"""train.py's parts beyond the training loop: its options (options.py) and what follows the fit (finish.py)."""

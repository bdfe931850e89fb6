"""Evaluate a trained run (or any saved classifier) on a dataset split (the code: commands/evaluate.py; installed: `tweetcls evaluate`)."""

import sys

from tweetcls.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

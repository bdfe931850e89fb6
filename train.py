"""Fine-tune a transformer encoder for short-text classification (the code: commands/train.py; installed: `tweetcls train`)."""

import sys

from tweetcls.commands.train import main

if __name__ == "__main__":
    sys.exit(main())

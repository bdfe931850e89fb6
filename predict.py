"""Classify new text with a trained model (the code: commands/predict.py; installed: `tweetcls predict`)."""

import sys

from tweetcls.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())

"""Export a trained model for use outside this project (the code: commands/export.py; installed: `tweetcls export`)."""

import sys

from tweetcls.commands.export import main

if __name__ == "__main__":
    sys.exit(main())

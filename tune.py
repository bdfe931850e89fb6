"""Search hyperparameters with Optuna: TPE, pruned trials, a study in a database (the code: commands/tune.py; installed: `tweetcls tune`)."""

import sys

from tweetcls.commands.tune import main

if __name__ == "__main__":
    sys.exit(main())

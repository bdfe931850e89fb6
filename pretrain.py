"""Continue masked-language-model pretraining of an encoder on unlabelled text (domain adaptation) (the code: commands/pretrain.py; installed: `tweetcls pretrain`)."""

import sys

from tweetcls.commands.pretrain import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m tweetcls <command> [options]``: the same table as the ``tweetcls`` command."""

import sys

from tweetcls.commands.__main__ import main

sys.exit(main())

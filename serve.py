"""Serve a trained model as an HTTP API and a web page (the code: commands/serve.py; installed: `tweetcls serve`)."""

import sys

from tweetcls.commands.serve import main

if __name__ == "__main__":
    sys.exit(main())

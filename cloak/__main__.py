"""``python -m cloak``: the command line."""
import sys

from cloak.cli import main

sys.exit(main())

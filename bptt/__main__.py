"""``python -m bptt ...`` is the ``bptt`` command."""

import sys

from .cli import main

sys.exit(main())

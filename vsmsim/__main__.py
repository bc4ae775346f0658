"""``python -m vsmsim`` is the ``vsmsim`` command."""

import sys

from .cli import main

sys.exit(main())

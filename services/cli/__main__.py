"""``python -m services.cli``: the ``rsnode`` command."""

import sys

from services.cli.rsnode import main

sys.exit(main())

"""``python -m profile_exports``: the same as the ``profile-exports`` command."""

import sys

from .cli import main

sys.exit(main())

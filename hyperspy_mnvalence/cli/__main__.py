"""``python -m hyperspy_mnvalence.cli``: the ``mnvalence`` command line."""

import sys

from . import main

sys.exit(main())

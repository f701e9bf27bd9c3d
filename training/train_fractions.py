"""Cross-validate and export the mixed-valence fraction model.

A thin entry point over ``hyperspy_mnvalence.training.fractions``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.fractions import main

if __name__ == "__main__":
    sys.exit(main())

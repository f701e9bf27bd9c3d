"""Cross-validate and export the classifier (the original Titan-augmentation protocol).

A thin entry point over ``hyperspy_mnvalence.training.__main__``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.__main__ import main

if __name__ == "__main__":
    sys.exit(main())

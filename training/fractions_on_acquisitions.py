"""Train and score a fraction model on recorded mixtures, beside the NNLS baseline.

A thin entry point over ``hyperspy_mnvalence.training.acquisition_fractions``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.acquisition_fractions import main

if __name__ == "__main__":
    sys.exit(main())

"""Train cross-validated classifier fold models on simulated acquisitions.

A thin entry point over ``hyperspy_mnvalence.training.acquisition_cv``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.acquisition_cv import main

if __name__ == "__main__":
    sys.exit(main())

"""Write the training reports and figures of the shipped models.

A thin entry point over ``hyperspy_mnvalence.training.reports``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.reports import main

if __name__ == "__main__":
    sys.exit(main())

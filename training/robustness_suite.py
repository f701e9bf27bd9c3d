"""Score ONNX models or fold models on the public robustness suite.

A thin entry point over ``hyperspy_mnvalence.training.suite``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.suite import main

if __name__ == "__main__":
    sys.exit(main())

"""Score acquisition-trained fold models on the robustness suite and export them as ONNX.

A thin entry point over ``hyperspy_mnvalence.training.acquisition_export``; run with ``--help`` for the options.
"""

import sys

from hyperspy_mnvalence.training.acquisition_export import main

if __name__ == "__main__":
    sys.exit(main())

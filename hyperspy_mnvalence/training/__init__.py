"""Retraining of the Mn valence classifier (needs the ``training`` extra).

TensorFlow is imported lazily inside the functions of this subpackage, so importing
it (or the inference package) does not need TensorFlow. Run
``python -m hyperspy_mnvalence.training --help`` for the command line.
"""

from .augment import DEFAULT_AUGMENTATION, augment_and_preprocess, augmentation_config

__all__ = ["DEFAULT_AUGMENTATION", "augment_and_preprocess", "augmentation_config"]

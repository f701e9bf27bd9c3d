"""hyperspy_mnvalence: calibration-independent Mn oxidation-state maps from EELS."""

__version__ = "0.1.0"

"""Every parameter of the public functions is documented, the shared entries included."""

from __future__ import annotations

import inspect
import re

import pytest

import hyperspy_mnvalence as mnv
from hyperspy_mnvalence._docstrings import share_parameters

PUBLIC = [mnv.classify_mn_valence, mnv.decompose_mn_valence]


@pytest.mark.parametrize("func", PUBLIC, ids=lambda f: f.__name__)
def test_every_parameter_documented_once(func):
    doc = func.__doc__
    assert "{signal_parameters}" not in doc and "{run_parameters}" not in doc
    for name in inspect.signature(func).parameters:
        entries = re.findall(rf"^    {re.escape(name)} : ", doc, re.M)
        assert len(entries) == 1, (func.__name__, name, len(entries))


def test_share_parameters_fills_at_the_placeholder_indent():
    def f():
        """Doc.

        Parameters
        ----------
            {run_parameters}
        x : int
        """

    doc = share_parameters(f).__doc__
    assert "\n            batch_size : int\n                Spectra per" in doc
    assert doc.index("remove_spikes : bool") < doc.index("x : int")

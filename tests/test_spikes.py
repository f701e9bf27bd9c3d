"""Spike and hot-channel removal (issue 14), measured on the acquisition simulator."""

import numpy as np
import pytest

from hyperspy_mnvalence.decisions import remove_spikes
from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.simulations import simulate_acquisition
from hyperspy_mnvalence.simulations.conditions import DETECTORS


@pytest.mark.parametrize("detector", ["white", "correlated"])
@pytest.mark.parametrize("dispersion", [0.05, 0.25, 0.5, 1.0, 1.5])
def test_edges_are_never_touched(detector, dispersion):
    # strong, sharp edges (L3 50 % above background, 0.1 eV resolution) at high dose:
    # the hardest case for a width test; not one channel may be replaced
    acq = simulate_acquisition(
        90,
        valence=np.tile([2, 3, 4], 30),
        dispersion_eV=dispersion,
        l3_over_background=0.5,
        resolution_eV=0.1,
        dose=1e6,
        offset_eV=np.linspace(-5, 5, 90),
        rng=7,
        **DETECTORS[detector],
    )
    cleaned, counts = remove_spikes(acq.spectra, acq.energy)
    assert counts.sum() == 0
    np.testing.assert_array_equal(cleaned, acq.spectra)


@pytest.mark.parametrize("detector", ["white", "correlated"])
def test_spikes_are_replaced_by_the_spectrum_underneath(detector):
    kw = dict(valence=3, l3_over_background=0.06, dose=8e4, rng=11, **DETECTORS[detector])
    clean = simulate_acquisition(200, **kw)
    spiky = simulate_acquisition(200, spikes_per_spectrum=1.0, **kw)  # same draws + spikes
    channels = spiky.truth["spike_channels"]  # one entry per spectrum
    assert len(channels) == 200
    assert [len(c) for c in channels] == spiky.truth["n_spikes"].tolist()
    hit = np.concatenate([np.repeat(i, len(c)) for i, c in enumerate(channels)]).astype(int)
    ch = np.concatenate(spiky.truth["spike_channels"]).astype(int)
    inside = (ch > 10) & (ch < clean.energy.size - 10)  # 2 eV from the ends
    cleaned, counts = remove_spikes(spiky.spectra, spiky.energy)
    noise = np.std(np.diff(clean.spectra, axis=1), axis=1) / np.sqrt(2)
    err = np.abs(cleaned[hit, ch] - clean.spectra[hit, ch]) / noise[hit]
    # every spike inside the spectrum found; the value left is within a few sigma
    assert counts[hit[inside]].min() >= 1
    assert np.median(err[inside]) < 1.5
    assert np.mean(err[inside] < 5) > 0.95
    # spectra without spikes are left alone
    no_spike = spiky.truth["n_spikes"] == 0
    assert counts[no_spike].sum() == 0


def test_hot_channel_in_every_spectrum_of_a_map():
    acq = simulate_acquisition(
        64, valence=2, dose=2e4, hot_channels=2, hot_level=0.2, rng=3, **DETECTORS["correlated"]
    )
    hot = acq.truth["hot_channels"]
    cleaned, counts = remove_spikes(acq.spectra, acq.energy)
    assert np.all(counts >= 2)
    ref = simulate_acquisition(64, valence=2, dose=2e4, rng=3, **DETECTORS["correlated"])
    # the map-mean excess left at the hot channels is below a tenth of what was added
    added = 0.2 * acq.truth["dose"][0] * acq.truth["dispersion_eV"] * acq.truth["gain"][0]
    left = (cleaned[:, hot] - ref.spectra[:, hot]).mean(axis=0)
    assert np.all(np.abs(left) < 0.1 * added)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_hot_channels_are_found_with_blank_pixels_in_the_map():
    # a blank (all-zero) and a constant pixel, as dead pixels or a drift correction's
    # padding leave: no noise scale of their own, so they must not veto the hot channels
    # of the others (their 0/0 made the batch's median NaN: no hot channel found, and a
    # RuntimeWarning)
    # hot channels weak enough (5 % of the background) that most spectra's own spike
    # search misses them: found on the map or not at all (before the fix: 20 of 64)
    acq = simulate_acquisition(
        64, valence=2, dose=2e4, hot_channels=2, hot_level=0.05, rng=3, **DETECTORS["correlated"]
    )
    spectra = acq.spectra.copy()
    spectra[5] = 0.0
    spectra[9] = 100.0
    cleaned, counts = remove_spikes(spectra, acq.energy)
    live = np.ones(64, bool)
    live[[5, 9]] = False
    assert np.all(counts[live] >= 2)
    hot = acq.truth["hot_channels"]
    ref = simulate_acquisition(64, valence=2, dose=2e4, rng=3, **DETECTORS["correlated"])
    added = 0.05 * acq.truth["dose"][0] * acq.truth["dispersion_eV"] * acq.truth["gain"][0]
    left = (cleaned[live][:, hot] - ref.spectra[live][:, hot]).mean(axis=0)
    assert np.all(np.abs(left) < 0.1 * added)


def test_preprocess_counts_spikes_and_keeps_spike_free_data_unchanged():
    kw = dict(valence=4, l3_over_background=0.1, dose=8e4, rng=5)
    clean = simulate_acquisition(50, **kw)
    on = preprocess(clean.spectra, clean.energy)
    off = preprocess(clean.spectra, clean.energy, remove_spikes=False)
    assert on.n_spikes.sum() == 0 and off.n_spikes.sum() == 0
    np.testing.assert_array_equal(on.x, off.x)
    spiky = simulate_acquisition(50, spikes_per_spectrum=2.0, **kw)
    pre = preprocess(spiky.spectra, spiky.energy)
    assert pre.n_spikes.sum() >= 0.8 * spiky.truth["n_spikes"].sum()
    assert preprocess(spiky.spectra, spiky.energy, remove_spikes=False).n_spikes.sum() == 0


@pytest.mark.parametrize("side", [1, -1])
def test_a_spike_spilling_into_its_neighbour_is_replaced_with_it(side):
    # 200 spike-free Poisson spectra (2e4 counts per channel, sigma 141), then one
    # spike per spectrum of 2500-4000 counts (12-20 sigma) spilling 40 % into one
    # neighbour: a cosmic ray across two channels at 4x-7x a 3 % L3 height. The spill
    # (1000-1600 counts) is below the threshold for a spike of its own.
    rng = np.random.default_rng(4)
    e = np.arange(600.0, 700.0, 0.25)
    clean = rng.poisson(2e4, (200, e.size)).astype(np.float64)
    spiky = clean.copy()
    rows = np.arange(200)
    c = rng.integers(20, e.size - 20, 200)
    h = rng.uniform(2500, 4000, 200)
    spiky[rows, c] += h
    spiky[rows, c + side] += 0.4 * h
    cleaned, counts = remove_spikes(spiky, e)
    err = np.abs(cleaned - clean) / np.sqrt(2e4)
    assert np.all(counts == 2)
    # both channels of every spike back to the spectrum underneath, within its noise
    # and that of the local mean that replaces them (1.2 sigma)
    both = np.concatenate([err[rows, c], err[rows, c + side]])
    assert both.max() < 5 and np.median(both) < 1.5
    # and nothing else touched
    mask = np.ones_like(err, dtype=bool)
    mask[rows, c] = mask[rows, c + side] = False
    assert np.all(err[mask] == 0)

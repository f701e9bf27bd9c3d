"""CPU time per spectrum of the lazy path against the eager path (issue 15, defect 7).

Classifies the same in-memory spectrum image eagerly and lazily (``lazy_output=True``
then ``compute_result``), with an empty block cache each time, and prints the process
CPU time per spectrum of each (best and median of ``--repeats`` runs after a warm-up) and
their ratio, and the median of the per-repeat ratios (each repeat runs both, one after
the other, so a change of machine load hits both). Process CPU time counts every
thread, so BLAS threads spinning in dask's workers show up here. A full garbage
collection runs (untimed) before every run: one triggered by earlier runs' objects costs
0.1-0.2 s in this process and would otherwise land in whichever run came next.

    python benchmarks/lazy_vs_eager_cpu.py --shape 128 128 --channels 2048 --model lite
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import warnings

import numpy as np


def _spectrum_image(rows: int, cols: int, channels: int, seed: int = 0):
    import exspy

    step = 0.25 if channels <= 1024 else 0.1
    e = 600.0 + 40.0 - step * channels / 3 + step * np.arange(channels)
    g = lambda c, w: np.exp(-0.5 * ((e - c) / w) ** 2)  # noqa: E731
    rng = np.random.default_rng(seed)
    l3 = 640.0 + rng.uniform(-3, 3, size=(rows, cols, 1))
    y = 1000 * (e / 600.0) ** -3 + 300 * (g(l3, 0.9) + 0.45 * g(l3 + 11, 1.1))
    s = exspy.signals.EELSSpectrum(rng.poisson(y * 5).astype(np.float32))
    s.set_signal_type("EELS_MnValence")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(e[0]), step, "eV"
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=2, default=(128, 128))
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--model", default="lite")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    import hyperspy_mnvalence as mnv
    from hyperspy_mnvalence import classification

    s = _spectrum_image(*a.shape, a.channels)
    n = a.shape[0] * a.shape[1]
    mnv.classify_mn_valence(s.inav[:16, :16], model=a.model, show_progressbar=False)
    runs: dict[str, list[float]] = {"eager": [], "lazy": []}
    load0 = os.getloadavg()[0]
    for _ in range(a.repeats):
        for mode in runs:  # alternated, so a change of machine load hits both
            classification._BLOCK_CACHE.clear()
            gc.collect()
            c0 = time.process_time()
            if mode == "eager":
                mnv.classify_mn_valence(s, model=a.model, show_progressbar=False)
            else:
                p = mnv.classify_mn_valence(
                    s, model=a.model, lazy_output=True, show_progressbar=False
                )
                mnv.compute_result(p, show_progressbar=False)
            runs[mode].append(1e6 * (time.process_time() - c0) / n)
    for mode, v in runs.items():
        print(
            f"{mode}: CPU per spectrum best {min(v):.1f} us, median {statistics.median(v):.1f} "
            f"us ({', '.join(f'{x:.1f}' for x in v)})"
        )
    best = min(runs["lazy"]) / min(runs["eager"])
    med = statistics.median(runs["lazy"]) / statistics.median(runs["eager"])
    pairs = statistics.median(x / y for x, y in zip(runs["lazy"], runs["eager"], strict=True))
    print(
        f"lazy / eager CPU per spectrum: best {best:.3f}, median {med:.3f}, median of "
        f"the {a.repeats} repeats' ratios {pairs:.3f} (model {a.model}, shape "
        f"{tuple(a.shape)} x {a.channels}; load average {load0:.2f} -> {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()

"""Throughput and peak memory of Mn-valence classification on large spectrum images.

Not a test. Prints spectra per second and peak resident memory for

* an eager ``128 x 128 x 2048`` float32 spectrum image (0.05 eV per channel), with the
  time of exspy's fast power-law background removal
  (``s.remove_background(signal_range=(600., 635.), fast=True)``) on the same data in
  the same run, and the ratio of the two;
* a lazy ``512 x 512 x 1024`` float32 spectrum image (0.1 eV per channel) generated
  block by block with dask, so it never exists whole in memory, plus a check that a
  crop of the lazy result equals the eager classification of the same pixels.

Every case runs in a fresh subprocess so that its peak memory
(``resource.getrusage(...).ru_maxrss``) is its own. The spectra are recorded by the
package's acquisition simulator (the same forward model as training and the tests):
Mn L2,3 edges of the three valences on a power-law background, a random calibration
offset per pixel, Poisson noise.

Usage::

    python benchmarks/benchmark_classification.py                 # full sizes
    python benchmarks/benchmark_classification.py --eager 64 64 1024 --lazy 128 128 1024
    python benchmarks/benchmark_classification.py --skip-lazy --model path/to/model.onnx
    python benchmarks/benchmark_classification.py --fractions --skip-exspy   # mixed valence
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

EAGER_AXIS = (580.0, 0.05)  # offset, scale (eV) of the eager data
LAZY_AXIS = (590.0, 0.1)


def _cpu_s() -> float:
    # user + system CPU seconds of this process, all threads: robust to a loaded machine
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def synthetic_block(n: int, energy: np.ndarray, seed: int, dtype: type = np.float32) -> np.ndarray:
    """``n`` spectra recorded by the package's acquisition simulator on ``energy``.

    Mn2+, Mn3+ and Mn4+ edges (10 % of the spectra without Mn) at L3 10-40 % above a
    power-law background, 1-8e4 electrons per eV, calibration offsets of +-4 eV, 0.3 eV
    resolution, an electron-counting detector
    (:func:`hyperspy_mnvalence.simulations.simulate_acquisition`).

    Parameters
    ----------
    n : int
        Number of spectra.
    energy : numpy.ndarray
        Uniform energy axis (eV).
    seed : int
        Seed of the random generator (one per block, so blocks are reproducible).
    dtype : type
        Output dtype.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, energy.size)``.
    """
    from hyperspy_mnvalence.simulations import simulate_acquisition

    rng = np.random.default_rng(seed)
    d = float(energy[1] - energy[0])
    ratio = rng.uniform(0.1, 0.4, n)
    ratio[rng.random(n) < 0.1] = 0.0  # vacuum / other phase: background only
    acq = simulate_acquisition(
        n,
        valence=rng.integers(2, 5, n),
        l3_over_background=ratio,
        dose=np.exp(rng.uniform(np.log(1e4), np.log(8e4), n)),
        offset_eV=rng.uniform(-4.0, 4.0, n),
        dispersion_eV=d,
        energy_range=(float(energy[0]), float(energy[0]) + d * energy.size),
        rng=rng,
    )
    return acq.spectra[:, : energy.size].astype(dtype, copy=False)


def eager_data(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx, nch = shape
    energy = EAGER_AXIS[0] + EAGER_AXIS[1] * np.arange(nch)
    data = np.empty(shape, np.float32)
    flat = data.reshape(-1, nch)
    step = 4096
    for k, i in enumerate(range(0, flat.shape[0], step)):
        flat[i : i + step] = synthetic_block(min(step, flat.shape[0] - i), energy, 1000 + k)
    return data, energy


def lazy_data(shape: tuple[int, int, int], chunk: int = 64):
    """Dask array generated block by block (never whole in memory)."""
    import dask.array as da

    ny, nx, nch = shape
    energy = LAZY_AXIS[0] + LAZY_AXIS[1] * np.arange(nch)
    chunks = (min(chunk, ny), min(chunk, nx), nch)
    nbx = -(-nx // chunks[1])

    def make(block_info=None):
        info = block_info[None]
        (y0, y1), (x0, x1), _ = info["array-location"]
        by, bx, _ = info["chunk-location"]
        blk = synthetic_block((y1 - y0) * (x1 - x0), energy, 10_000 + by * nbx + bx)
        return blk.reshape(y1 - y0, x1 - x0, nch)

    data = da.map_blocks(make, chunks=da.core.normalize_chunks(chunks, shape), dtype=np.float32)
    return data, energy


def _signal(data, energy, lazy: bool = False):
    import exspy

    cls = exspy.signals.LazyEELSSpectrum if lazy else exspy.signals.EELSSpectrum
    s = cls(data)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(energy[0]), float(energy[1] - energy[0]), "eV"
    return s


def _runner(fractions: bool):
    """The function a case times and the name of its shipped model."""
    from hyperspy_mnvalence import classify_mn_valence, decompose_mn_valence
    from hyperspy_mnvalence.model import DEFAULT_MODEL, FRACTIONS_MODEL

    if fractions:
        return decompose_mn_valence, FRACTIONS_MODEL
    return classify_mn_valence, DEFAULT_MODEL


def _cpu_split(
    flat: np.ndarray, energy: np.ndarray, model, batch: int = 512, fractions: bool = False
) -> dict:
    # CPU seconds of the two stages, each run alone on one thread in the same batches
    # as classify_mn_valence: where the time goes
    from hyperspy_mnvalence.classification import onnx_batch
    from hyperspy_mnvalence.model import load_model
    from hyperspy_mnvalence.preprocessing import preprocess, single_threaded_blas

    m = load_model(model, name=_runner(fractions)[1])
    xs, c = [], _cpu_s()
    with single_threaded_blas():
        for i in range(0, flat.shape[0], batch):
            pre = preprocess(flat[i : i + batch], energy, params=m.preprocessing)
            xs.append(pre.x[pre.valid])
    c_pre = _cpu_s() - c
    m.predict(xs[0][:1], n_threads=1)  # the session is created outside the timing
    c = _cpu_s()
    for x in xs:
        m.predict(x, batch_size=onnx_batch(m, batch), n_threads=1)
    return {"cpu_seconds_preprocessing": c_pre, "cpu_seconds_network": _cpu_s() - c}


def case_eager(shape, model, repeat: int, fractions: bool = False) -> dict:
    run = _runner(fractions)[0]
    data, energy = eager_data(shape)
    s = _signal(data, energy)
    rss_data = _peak_rss_mib()
    run(s.inav[:4, :4], model=model, show_progressbar=False)  # warm-up
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu_s()
        p = run(s, model=model, show_progressbar=False)
        times.append(time.perf_counter() - t)
        cpu.append(_cpu_s() - c)
    n = shape[0] * shape[1]
    valid = float(np.isfinite(p.data[0]).mean())
    peak = _peak_rss_mib()  # before the stage split below, which keeps its inputs
    split = _cpu_split(data.reshape(n, -1), energy, model, fractions=fractions)
    return {
        **split,
        "case": "eager_fractions" if fractions else "eager",
        "shape": list(shape),
        "seconds": min(times),
        "seconds_all": times,
        "cpu_seconds": min(cpu),
        "spectra_per_s": n / min(times),
        "valid_fraction": valid,
        "peak_rss_MiB": peak,
        "rss_after_data_MiB": rss_data,
    }


#: exspy is timed at least this often: some of its runs are 3-4x slower than others
#: (about 1 s of kernel time spent on fresh memory pages), see RESULTS.md
EXSPY_MIN_REPEAT = 8


def case_exspy(shape, repeat: int) -> dict:
    data, energy = eager_data(shape)
    s = _signal(data, energy)
    s.inav[:4, :4].remove_background(signal_range=(600.0, 635.0), fast=True, show_progressbar=False)
    times, user, system = [], [], []
    for _ in range(max(repeat, EXSPY_MIN_REPEAT)):
        r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        s.remove_background(signal_range=(600.0, 635.0), fast=True, show_progressbar=False)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        user.append(r1.ru_utime - r0.ru_utime)
        system.append(r1.ru_stime - r0.ru_stime)
    n = shape[0] * shape[1]
    return {
        "case": "exspy_remove_background_fast",
        "shape": list(shape),
        "seconds": min(times),
        "seconds_median": float(np.median(times)),
        "seconds_all": times,
        "cpu_seconds": min(u + k for u, k in zip(user, system, strict=True)),
        "user_seconds_all": user,
        "system_seconds_all": system,
        "spectra_per_s": n / min(times),
        "peak_rss_MiB": _peak_rss_mib(),
    }


def case_lazy(shape, model, crop: int = 48, fractions: bool = False) -> dict:
    import dask

    run = _runner(fractions)[0]
    data, energy = lazy_data(shape)
    s = _signal(data, energy, lazy=True)
    t, c = time.perf_counter(), _cpu_s()
    p = run(s, model=model, show_progressbar=False)
    assert p._lazy
    probs, reason = dask.compute(p.data, p.metadata.MnValence.reason.data)
    dt, dc = time.perf_counter() - t, _cpu_s() - c
    n = shape[0] * shape[1]
    # a crop of the lazy input, classified eagerly, equals the same pixels of the result
    c = min(crop, shape[0], shape[1])
    y0, x0 = (shape[0] - c) // 2 + 3, (shape[1] - c) // 2 + 5
    y0, x0 = min(y0, shape[0] - c), min(x0, shape[1] - c)
    sub = _signal(np.asarray(data[y0 : y0 + c, x0 : x0 + c].compute()), energy)
    pe = run(sub, model=model, show_progressbar=False).data
    got = probs[:, y0 : y0 + c, x0 : x0 + c]
    same_mask = bool(np.array_equal(np.isnan(got), np.isnan(pe)))
    max_diff = float(np.nanmax(np.abs(got - pe))) if np.isfinite(pe).any() else 0.0
    return {
        "case": "lazy_fractions" if fractions else "lazy",
        "shape": list(shape),
        "input_chunks": [list(map(int, ch[:2])) for ch in data.chunks[:2]],
        "seconds": dt,
        "cpu_seconds": dc,
        "spectra_per_s": n / dt,
        "valid_fraction": float(np.isfinite(probs[0]).mean()),
        "reason_counts": np.bincount(reason.astype(int).ravel()).tolist(),
        "peak_rss_MiB": _peak_rss_mib(),
        "crop_equal_nan_mask": same_mask,
        "crop_max_abs_diff": max_diff,
    }


def _run_child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark case {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--eager", nargs=3, type=int, default=[128, 128, 2048], metavar=("NY", "NX", "NCH")
    )
    ap.add_argument(
        "--lazy", nargs=3, type=int, default=[512, 512, 1024], metavar=("NY", "NX", "NCH")
    )
    ap.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ap.add_argument(
        "--fractions",
        action="store_true",
        help="time decompose_mn_valence (mixed valence, the shipped fraction model by "
        "default) instead of classify_mn_valence",
    )
    ap.add_argument("--repeat", type=int, default=2, help="timed repeats of the eager cases")
    ap.add_argument("--skip-eager", action="store_true")
    ap.add_argument("--skip-exspy", action="store_true")
    ap.add_argument("--skip-lazy", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--case", choices=["eager", "exspy", "lazy"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.case:  # child process: one case, one line of JSON
        if a.case == "eager":
            res = case_eager(tuple(a.eager), a.model, a.repeat, a.fractions)
        elif a.case == "exspy":
            res = case_exspy(tuple(a.eager), a.repeat)
        else:
            res = case_lazy(tuple(a.lazy), a.model, fractions=a.fractions)
        print("RESULT " + json.dumps(res))
        return 0

    common = ["--eager", *map(str, a.eager), "--lazy", *map(str, a.lazy), "--repeat", str(a.repeat)]
    if a.model:
        common += ["--model", a.model]
    if a.fractions:
        common += ["--fractions"]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  {platform.processor() or platform.machine()}"
        f"  {os.cpu_count()} CPUs  python {platform.python_version()}"
    )
    results = {}
    if not a.skip_eager:
        r = results["eager"] = _run_child(["--case", "eager", *common])
        print(
            f"eager {tuple(r['shape'])}: {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} CPU s), {r['spectra_per_s']:,.0f} spectra/s, "
            f"peak RSS {r['peak_rss_MiB']:.0f} MiB (data alone {r['rss_after_data_MiB']:.0f} MiB), "
            f"valid {r['valid_fraction']:.1%}; every repeat: "
            + ", ".join(f"{t:.2f}" for t in r["seconds_all"])
            + " s; CPU of each stage run alone: preprocessing "
            f"{r['cpu_seconds_preprocessing']:.2f} s, network {r['cpu_seconds_network']:.2f} s"
        )
    if not a.skip_exspy:
        r = results["exspy"] = _run_child(["--case", "exspy", *common])
        print(
            f"exspy remove_background(fast=True) {tuple(r['shape'])}: {r['seconds']:.2f} s "
            f"({r['cpu_seconds']:.2f} CPU s), "
            f"{r['spectra_per_s']:,.0f} spectra/s, peak RSS {r['peak_rss_MiB']:.0f} MiB; "
            "every repeat: " + ", ".join(f"{t:.2f}" for t in r["seconds_all"]) + " s "
            "(system CPU: " + ", ".join(f"{t:.2f}" for t in r["system_seconds_all"]) + " s)"
        )
        if "eager" in results:
            ratio = results["eager"]["seconds"] / r["seconds"]
            mratio = results["eager"]["seconds"] / r["seconds_median"]
            cratio = results["eager"]["cpu_seconds"] / r["cpu_seconds"]
            results["ratio_classification_over_exspy"] = ratio
            results["ratio_classification_over_exspy_median"] = mratio
            results["cpu_ratio_classification_over_exspy"] = cratio
            print(
                f"classification / exspy background removal: {ratio:.2f} (wall time, fastest "
                f"runs), {mratio:.2f} (against exspy's median run), {cratio:.2f} (CPU time)"
            )
    if not a.skip_lazy:
        r = results["lazy"] = _run_child(["--case", "lazy", *common])
        print(
            f"lazy {tuple(r['shape'])}: {r['seconds']:.1f} s ({r['cpu_seconds']:.1f} CPU s), {r['spectra_per_s']:,.0f} spectra/s, "
            f"peak RSS {r['peak_rss_MiB']:.0f} MiB, valid {r['valid_fraction']:.1%}; crop == eager: "
            f"NaN mask {r['crop_equal_nan_mask']}, max |diff| {r['crop_max_abs_diff']:.2e}"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

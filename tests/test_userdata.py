"""Training data from a folder of the user's own labelled EELS files (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from hyperspy_mnvalence import datasets
from hyperspy_mnvalence.preprocessing import preprocess
from hyperspy_mnvalence.training.userdata import label_from_name, load_labelled_folder

hs = pytest.importorskip("hyperspy.api")


@pytest.fixture
def folder(tmp_path, write_labelled_folder):
    root = tmp_path / "mine"
    root.mkdir()
    return root, write_labelled_folder(root)


def _eels(data, offset=600.0, scale=0.2):
    s = hs.signals.Signal1D(np.asarray(data, float))
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = offset, scale, "eV"
    return s


def test_label_from_name():
    assert label_from_name("MnO_mn2.hspy") == 2
    assert label_from_name("LMO_Mn3+_area1.msa") == 3
    assert label_from_name("mn4-pyrolusite.dm4") == 4
    assert label_from_name("MN3.hspy") == 3
    for name in ("Mn2O3.hspy", "mn23.hspy", "sample.hspy", "mn5.hspy", "amn3.hspy"):
        assert label_from_name(name) is None, name
    with pytest.raises(ValueError, match="several valences"):
        label_from_name("mix_mn2_mn3.hspy")


def test_load_folder_common_grid_labels_records(folder):
    root, files = folder
    d = load_labelled_folder(root)
    names = sorted(files)
    n = sum(v[1] for v in files.values())
    e = d["energy"]
    assert d["spectra"].shape == (n, e.size) and d["spectra"].dtype == np.float32
    # one uniform 0.1 eV grid over the range every file covers
    np.testing.assert_allclose(np.diff(e), 0.1, atol=1e-9)
    lo = max(v[2][0] for v in files.values())
    hi = min(v[2][-1] for v in files.values())
    assert lo <= e[0] < lo + 0.1 and hi - 0.1 < e[-1] <= hi
    # files in name order, every pixel with its file's label
    recs = d["training_data"]
    assert [r["file"] for r in recs] == names
    for k, (r, name) in enumerate(zip(recs, names, strict=True)):
        valence, count, _ = files[name]
        assert r["sha256"] == datasets.file_sha256(root / name)
        assert r["n_spectra"] == count and r["valence"] == valence
        assert np.all(d["valence"][d["files"] == k] == valence)
        assert np.sum(d["files"] == k) == count
    src = {r["file"]: r["label_source"] for r in recs}
    assert src["labelled_by_metadata.hspy"] == "metadata.Sample.mn_valence"
    assert src["si_mn2.hspy"] == "file name"
    # resampling keeps the edge: same L3 peak on the common grid as on each file's axis
    for k, name in enumerate(names):
        raw = hs.load(root / name)
        ax = raw.axes_manager.signal_axes[0]
        own = preprocess(raw.data.reshape(-1, ax.size), ax.axis, check_edge=False).peak_eV
        common = preprocess(d["spectra"][d["files"] == k], e)
        assert common.valid.all(), name
        np.testing.assert_allclose(common.peak_eV, own, atol=0.11, err_msg=name)


def test_labels_csv(folder):
    root, files = folder
    (root / "si_mn2.hspy").rename(root / "area_a.hspy")
    rows = ["file,valence", "area_a.hspy,Mn2+"] + [  # the README's label forms
        f"{name},{v[0]}" for name, v in files.items() if name != "si_mn2.hspy"
    ]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    d = load_labelled_folder(root)
    recs = {r["file"]: r for r in d["training_data"]}
    assert recs["area_a.hspy"]["valence"] == 2
    assert recs["area_a.hspy"]["label_source"] == "labels.csv"
    assert recs["labels.csv"]["sha256"] == datasets.file_sha256(root / "labels.csv")
    assert recs["labels.csv"]["n_spectra"] == 0
    # the table is the only source when present: a file it leaves out is an error
    (root / "labels.csv").write_text("\n".join(rows[:-1]) + "\n")
    left_out = rows[-1].split(",")[0]
    with pytest.raises(ValueError, match=f"{left_out}: no label"):
        load_labelled_folder(root)
    (root / "labels.csv").write_text("\n".join(rows + ["typo.hspy,3"]) + "\n")
    with pytest.raises(ValueError, match="typo.hspy"):
        load_labelled_folder(root)
    (root / "labels.csv").write_text("\n".join(rows[:-1] + [rows[-1][:-1] + "5"]) + "\n")
    with pytest.raises(ValueError, match="must be 2, 3 or 4"):
        load_labelled_folder(root)


def test_training_data_from_folder(folder, tmp_path, monkeypatch):
    from hyperspy_mnvalence.training.data import load_training_data

    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "no_data"))
    root, files = folder
    d = load_training_data(data_dir=root)
    assert d["noise_values"] is None
    assert [r["file"] for r in d["training_data"]] == sorted(files)
    assert np.bincount(d["y"]).tolist() == [42, 41, 42]
    # groups: the index of each spectrum's file in training_data (files in name order)
    g = d["groups"]
    assert d["group_by"] == "file" and g.dtype.kind == "i" and g.shape == d["y"].shape
    names = sorted(files)
    assert np.bincount(g).tolist() == [files[n][1] for n in names]
    assert np.all(np.diff(g) >= 0)  # each file's pixels in one block
    for k, name in enumerate(names):
        assert d["training_data"][k]["file"] == name
        np.testing.assert_array_equal(d["y"][g == k], files[name][0] - 2)
    with pytest.raises(ValueError, match="not both"):
        load_training_data(root / "x.npz", data_dir=root)


def test_npz_groups(tmp_path, monkeypatch, toy_edge):
    """An .npz may carry ``groups`` (any ids, renumbered 0..G-1); without it, None."""
    from hyperspy_mnvalence.training.data import load_training_data

    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "no_data"))
    e = 600.0 + 0.2 * np.arange(450)
    s = np.stack([toy_edge(e, 640.0 + 0.1 * i) for i in range(6)]).astype(np.float32)
    labels = np.array([2, 2, 3, 3, 4, 4])
    np.savez(tmp_path / "plain.npz", spectra=s, labels=labels, energy_eV=e)
    d = load_training_data(tmp_path / "plain.npz")
    assert d["groups"] is None and d["group_by"] is None
    ids = np.array(["b", "b", "a", "c", "c", "d"])
    np.savez(tmp_path / "grouped.npz", spectra=s, labels=labels, energy_eV=e, groups=ids)
    d = load_training_data(tmp_path / "grouped.npz")
    np.testing.assert_array_equal(d["groups"], [1, 1, 0, 2, 2, 3])
    assert d["group_by"] == "npz groups"
    np.savez(tmp_path / "bad.npz", spectra=s, labels=labels, energy_eV=e, groups=ids[:5])
    with pytest.raises(ValueError, match="one id per spectrum"):
        load_training_data(tmp_path / "bad.npz")


def _synthetic_groups(n_groups: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and group ids: groups of 1-30 spectra, one class per group."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 31, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    y = np.repeat(np.arange(n_groups) % 3, sizes)
    order = rng.permutation(groups.size)  # spectra of a group need not be contiguous
    return y[order], groups[order]


@pytest.mark.parametrize(("folds", "seed"), [(2, 0), (3, 7), (5, 1), (12, 3)])
def test_cv_splits_grouped_keeps_files_whole(folds, seed):
    pytest.importorskip("sklearn")
    from hyperspy_mnvalence.training.cv import cv_splits

    y, groups = _synthetic_groups(seed=seed)
    splits = cv_splits(y, groups, folds, seed)
    assert len(splits) == folds
    seen = np.zeros(y.size, int)
    for tr, te in splits:
        assert te.size and np.intersect1d(groups[tr], groups[te]).size == 0
        assert np.union1d(tr, te).size == y.size and np.intersect1d(tr, te).size == 0
        seen[te] += 1
    np.testing.assert_array_equal(seen, 1)  # every spectrum validated exactly once
    again = cv_splits(y, groups, folds, seed)
    for (a, b), (c, d) in zip(splits, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize(("folds", "seed"), [(2, 0), (5, 3), (10, 0)])
def test_cv_splits_without_groups_unchanged(folds, seed):
    """No groups: exactly the StratifiedKFold splits of the shipped models' CV."""
    pytest.importorskip("sklearn")
    from sklearn.model_selection import StratifiedKFold

    from hyperspy_mnvalence.training.cv import cv_splits

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 157)
    spectra = rng.normal(size=(y.size, 40)).astype(np.float32)
    ref = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(spectra, y)
    got = cv_splits(y, None, folds, seed)
    for (a, b), (c, d) in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert len(got) == folds


def test_cv_splits_too_few_groups():
    pytest.importorskip("sklearn")
    from hyperspy_mnvalence.training.cv import cv_splits

    y, groups = _synthetic_groups(n_groups=4)
    with pytest.raises(ValueError, match=r"4 file\(s\)/group\(s\) but 5 folds.*--folds N"):
        cv_splits(y, groups, 5, 0)
    with pytest.raises(ValueError, match=r"1 file.*--folds 1"):
        cv_splits(y, np.zeros_like(groups), 2, 0)
    with pytest.raises(ValueError, match="one entry per spectrum"):
        cv_splits(y, groups[:-1], 2, 0)


def test_early_stopping_split_by_group():
    """Enough groups: whole groups held out; too few or none: the split over spectra."""
    pytest.importorskip("sklearn")
    from sklearn.model_selection import train_test_split

    from hyperspy_mnvalence.training.cv import split_for_early_stopping

    y, groups = _synthetic_groups(n_groups=30, seed=2)
    tr, va, kind = split_for_early_stopping(y, groups, 0.1, 5)
    assert kind == "by group" and va.size
    assert np.intersect1d(groups[tr], groups[va]).size == 0
    assert np.union1d(tr, va).size == y.size and set(y[tr]) == {0, 1, 2}
    ref = train_test_split(np.arange(y.size), test_size=0.1, stratify=y, random_state=5)
    tr, va, kind = split_for_early_stopping(y, None, 0.1, 5)
    assert kind == "by spectrum"
    np.testing.assert_array_equal(tr, ref[0])
    np.testing.assert_array_equal(va, ref[1])
    tr, va, kind = split_for_early_stopping(y, groups % 6, 0.1, 5)  # 6 groups < 10
    assert kind == "by spectrum (too few groups)"
    np.testing.assert_array_equal(va, ref[1])
    # a class with one spectrum (a one-spectrum file): the split is not stratified
    one = np.where(y == 1, 0, y)
    one[np.nonzero(y == 1)[0][0]] = 1
    tr, va, kind = split_for_early_stopping(one, groups % 6, 0.1, 5)
    assert kind == "by spectrum (too few groups)" and np.union1d(tr, va).size == one.size
    with pytest.raises(ValueError, match="least populated class"):  # no groups: as before
        split_for_early_stopping(one, None, 0.1, 5)
    tr, va, kind = split_for_early_stopping(y, groups, 0.0, 5)
    assert kind == "none" and va.size == 0 and tr.size == y.size


def test_missing_label(folder):
    root, _ = folder
    _eels(np.ones((2, 450))).save(root / "unlabelled.hspy")
    with pytest.raises(ValueError, match=r"unlabelled\.hspy: no label"):
        load_labelled_folder(root)


def test_conflicting_labels(folder):
    root, _ = folder
    s = hs.load(root / "si_mn2.hspy")
    s.metadata.set_item("Sample.mn_valence", 3)
    s.save(root / "si_mn2.hspy", overwrite=True)
    with pytest.raises(ValueError, match=r"si_mn2\.hspy: .*disagree"):
        load_labelled_folder(root)


def test_non_eels_and_2d_signals(folder):
    root, _ = folder
    image = root / "image_mn3.hspy"
    hs.signals.Signal2D(np.ones((8, 8))).save(image)
    with pytest.raises(ValueError, match=r"image_mn3\.hspy: holds a 2D signal.*not EELS"):
        load_labelled_folder(root)
    image.unlink()
    hs.signals.Signal1D(np.ones(450)).save(root / "plain_mn3.hspy")
    with pytest.raises(ValueError, match=r"plain_mn3\.hspy: holds a 1D signal.*not EELS"):
        load_labelled_folder(root)


def test_no_mn_range_or_edge(folder):
    root, _ = folder
    oxygen = root / "oxygen_mn3.hspy"
    _eels(np.random.default_rng(0).poisson(100.0, (2, 500)), offset=400.0).save(oxygen)
    with pytest.raises(ValueError, match=r"oxygen_mn3\.hspy: .*does not contain the Mn L2,3"):
        load_labelled_folder(root)
    oxygen.unlink()
    e = 600.0 + 0.2 * np.arange(450)
    flat = root / "flat_mn3.hspy"
    _eels(np.random.default_rng(0).poisson(1e4 * (e / 600.0) ** -3, (3, 450))).save(flat)
    with pytest.raises(ValueError, match=r"flat_mn3\.hspy: no Mn L2,3 edge"):
        load_labelled_folder(root)


def test_ranges_must_overlap(folder):
    root, _ = folder
    # a file that ends 25 eV above its (badly calibrated, 17 eV low) L3 is fine alone, but
    # the range all files share would cut off the others' L2: reported, not padded
    from hyperspy_mnvalence.synthetic import synthetic_spectra

    e = 600.0 + 0.2 * np.arange(250)
    short = synthetic_spectra(e, 3, counts=np.full(2, 300.0), offset_eV=-17.0, rng=0)
    _eels(short, offset=600.0).save(root / "short_mn3.hspy")
    # first a warning that names the file limiting the shared range, then the error
    with (
        pytest.warns(UserWarning, match=r"share only 615\.0-649\.8 eV .* to short_mn3\.hspy"),
        pytest.raises(ValueError, match="energy range all files share"),
    ):
        load_labelled_folder(root)


def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no spectrum file"):
        load_labelled_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_labelled_folder(tmp_path / "nope")


def test_every_label_source_takes_the_same_forms():
    from hyperspy_mnvalence.training.userdata import as_valence

    for text, v in ((2, 2), (3.0, 3), ("4", 4), ("3+", 3), ("Mn2+", 2), ("mn4+", 4)):
        assert as_valence(text) == v
    for bad in ("Mn5+", "x", "", "Fe3+"):
        assert as_valence(bad) is None

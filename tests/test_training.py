"""Tests of the training pipeline (smoke mode: tiny data, few epochs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.training

tf = pytest.importorskip("tensorflow")
pytest.importorskip("keras")
pytest.importorskip("sklearn")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from hyperspy_mnvalence import datasets  # noqa: E402
from hyperspy_mnvalence.preprocessing import DEFAULT_PREPROCESSING, preprocess  # noqa: E402
from hyperspy_mnvalence.training.augment import (  # noqa: E402
    DEFAULT_AUGMENTATION,
    NO_AUGMENTATION,
    augment_and_preprocess,
    augmentation_config,
)

REQUIRED_META = {
    "format_version",
    "task",
    "classes",
    "class_names",
    "energy_step_eV",
    "preprocessing",
    "input_name",
    "outputs",
    "architecture",
    "n_members",
    "augmentation",
    "training_data",
    "seed",
    "metrics",
    "package_version",
    "tensorflow_version",
    "created",
}


def _have_real_data() -> bool:
    d = datasets.data_dir()
    return all(
        (d / p).is_file()
        for p in (
            "train/titan_mn_valence.npz",
            "train/titan_pca_noise.npz",
            "test/digitized_references.csv",
        )
    )


needs_data = pytest.mark.skipif(
    not _have_real_data(),
    reason=f"labelled data not found in {datasets.data_dir()} (set MNVALENCE_DATA)",
)


def _synthetic(n_per_class: int = 20, seed: int = 0):
    """Three synthetic edge shapes (L3/L2 ratio and L3 position differ per class)."""
    rng = np.random.default_rng(seed)
    e = np.arange(620.0, 680.0, 0.2)
    spectra, labels = [], []
    for v, (pos, ratio) in zip((2, 3, 4), ((640.0, 3.0), (642.0, 2.0), (643.5, 1.3)), strict=True):
        for _ in range(n_per_class):
            p = pos + rng.normal(0, 0.2)
            y = (
                1e3 * (e / 620.0) ** -3
                + ratio * 100 * np.exp(-0.5 * ((e - p) / 0.8) ** 2)
                + 100 * np.exp(-0.5 * ((e - p - 11) / 1.0) ** 2)
                + 30 / (1 + np.exp(-(e - p + 1)))
            )
            spectra.append(y + rng.normal(0, 1.0, e.size))
            labels.append(v)
    return np.array(spectra, np.float32), np.array(labels), e


def test_augmentation_shapes_and_switches():
    s, _, e = _synthetic(5)
    rng = np.random.default_rng(0)
    cfg = augmentation_config(enable=["all"], disable=[])
    cfg["pca_noise"]["enabled"] = False
    assert all(v["enabled"] for k, v in cfg.items() if k != "pca_noise")
    x = augment_and_preprocess(s, e, cfg, rng)
    assert x.shape == (15, 300) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    # everything off: identical to plain preprocessing
    x0 = augment_and_preprocess(s, e, NO_AUGMENTATION, rng)
    np.testing.assert_allclose(x0, preprocess(s, e, check_edge=False).x, atol=1e-6)
    # augmentation changes the input
    assert np.abs(x - x0).max() > 1e-2
    with pytest.raises(ValueError, match="Unknown augmentation"):
        augmentation_config(disable=["nonsense"])
    # every physical augmentation alone changes the input and keeps it finite
    for name in cfg:
        if name in ("pca_noise", "translation"):
            continue
        one = augmentation_config(disable=["all"], enable=[name])
        one[name]["p"] = 1.0
        xa = augment_and_preprocess(s, e, one, np.random.default_rng(2))
        assert np.all(np.isfinite(xa)), name
        assert np.abs(xa - x0).max() > 1e-3, name
    with pytest.raises(ValueError, match="noise_values"):
        augment_and_preprocess(s, e, DEFAULT_AUGMENTATION, rng)


def test_translation_moves_window():
    s, _, e = _synthetic(2)
    cfg = augmentation_config(disable=["all"])
    cfg["translation"].update(enabled=True, p=1.0, max_shift_eV=5.0)
    x = augment_and_preprocess(s, e, cfg, np.random.default_rng(1))
    x0 = preprocess(s, e, check_edge=False).x
    # the L3 maximum moves within the window by up to 50 channels
    shift = np.abs(x.argmax(1) - x0.argmax(1))
    assert shift.max() > 5 and shift.max() <= 51


@pytest.mark.parametrize(
    "arch", ["fcn", "fcn_wide", "fcn_lite", "fcn_small", "fcn_big", "dense", "conv_dense"]
)
def test_architectures_build(arch):
    from hyperspy_mnvalence.training.architectures import build_model

    m = build_model(arch)
    out = m(np.zeros((2, 300, 1), np.float32), training=False)
    assert tuple(out.shape) == (2, 3)
    if arch == "fcn_big":  # twice fcn_wide's filters: about four times its weights
        ratio = m.count_params() / build_model("fcn_wide").count_params()
        assert 3.5 < ratio < 4.5
    if arch == "fcn":
        assert 500 < m.count_params() < 800
        # length-agnostic
        assert tuple(m(np.zeros((1, 400, 1), np.float32)).shape) == (1, 3)


def test_export_matches_keras(tmp_path):
    from hyperspy_mnvalence.training.architectures import build_model
    from hyperspy_mnvalence.training.export import build_metadata, export_onnx, read_metadata
    from hyperspy_mnvalence.training.loop import seed_everything

    seed_everything(0)
    members = [build_model("fcn"), build_model("fcn_wide")]
    s, y, e = _synthetic(4)
    x = preprocess(s, e, check_edge=False).x
    # a short fit so batch-norm statistics are not trivial
    for m in members:
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x[..., None], np.searchsorted([2, 3, 4], y), epochs=1, verbose=0)
    meta = build_metadata(
        architecture="test",
        n_members=2,
        augmentation=DEFAULT_AUGMENTATION,
        training_data=[{"file": "synthetic", "sha256": "0" * 64, "n_spectra": len(y)}],
        seed=0,
        metrics={"cv_accuracy": 0.5},
    )
    path = export_onnx(members, tmp_path / "m.onnx", meta)
    sess = ort.InferenceSession(str(path))
    assert [i.name for i in sess.get_inputs()] == ["spectra"]
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "probability_std"]
    p, sd = sess.run(None, {"spectra": x})
    keras_p = np.stack([np.asarray(m(x[..., None], training=False)) for m in members])
    np.testing.assert_allclose(p, keras_p.mean(0), atol=1e-5)
    np.testing.assert_allclose(sd, keras_p.std(0), atol=1e-5)
    # dynamic batch and length
    p2, _ = sess.run(None, {"spectra": np.zeros((3, 350), np.float32)})
    assert p2.shape == (3, 3)
    got = read_metadata(path)
    assert REQUIRED_META <= set(got)
    assert got["preprocessing"] == json.loads(json.dumps(DEFAULT_PREPROCESSING))
    assert got["n_members"] == 2
    # batch norms and biases were folded into the convolutions (the outputs above
    # still equal Keras): no element-wise Add left, one Mul (the spread's square)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("Add") == 0 and ops.count("Mul") == 1, ops
    assert ops.count("Conv") == 12 and "folded" in got["graph"]


def test_same_shaped_members_run_as_grouped_convolutions(tmp_path):
    from hyperspy_mnvalence.training.architectures import build_model
    from hyperspy_mnvalence.training.export import export_onnx, read_metadata
    from hyperspy_mnvalence.training.graph_rewrites import group_ensemble, group_ensemble_file
    from hyperspy_mnvalence.training.loop import seed_everything

    seed_everything(1)
    members = [build_model("fcn_lite") for _ in range(3)]
    s, y, e = _synthetic(4)
    x = preprocess(s, e, check_edge=False).x
    for m in members:  # a short fit so the members and their batch norms differ
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x[..., None], np.searchsorted([2, 3, 4], y), epochs=1, verbose=0)
    path = export_onnx(members, tmp_path / "g.onnx", {"test": True})
    p, sd = ort.InferenceSession(str(path)).run(None, {"spectra": x})
    keras_p = np.stack([np.asarray(m(x[..., None], training=False)) for m in members])
    np.testing.assert_allclose(p, keras_p.mean(0), atol=1e-5)
    np.testing.assert_allclose(sd, keras_p.std(0), atol=1e-5)
    assert sd.max() > 1e-4  # the members differ: the spread is not trivially zero
    graph = onnx.load(str(path)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in convs]
    assert groups == [1, 3, 3, 3, 3, 3]  # one convolution per layer for all members
    assert "grouped" in read_metadata(path)["graph"]
    # grouping again finds nothing to do; a file of another architecture is untouched
    proto = onnx.load(str(path))
    assert group_ensemble(proto) is proto
    dense = export_onnx(build_model("dense"), tmp_path / "d.onnx", {"test": True})
    before = dense.read_bytes()
    assert group_ensemble_file(dense)["max_abs_difference"] is None
    assert dense.read_bytes() == before


def test_fold_batchnorm_leaves_other_graphs_alone(tmp_path):
    from hyperspy_mnvalence.training.architectures import build_model
    from hyperspy_mnvalence.training.export import export_onnx
    from hyperspy_mnvalence.training.graph_rewrites import fold_batchnorm

    m = build_model("dense")
    path = export_onnx(m, tmp_path / "d.onnx", {"test": True})
    x = np.random.default_rng(0).normal(0, 0.3, (16, 300)).astype(np.float32)
    p, _ = ort.InferenceSession(str(path)).run(None, {"spectra": x})
    np.testing.assert_allclose(p, np.asarray(m(x[..., None], training=False)), atol=1e-5)
    # nothing matches the convolution patterns: folding again changes nothing
    proto = onnx.load(str(path))
    assert [n.op_type for n in fold_batchnorm(proto).graph.node] == [
        n.op_type for n in proto.graph.node
    ]


@needs_data
def test_smoke_cli_real_data(tmp_path):
    """The whole command line on 120 real spectra, 2 folds, 2 epochs."""
    from hyperspy_mnvalence.training.__main__ import main
    from hyperspy_mnvalence.training.export import read_metadata

    out = tmp_path / "smoke.onnx"
    assert main(["--smoke", "--out", str(out), "--arch", "fcn"]) == 0
    meta = read_metadata(out)
    assert REQUIRED_META <= set(meta)
    mt = meta["metrics"]
    for k in (
        "cv_accuracy",
        "digitized_accuracy",
        "shift_accuracy",
        "noise_accuracy",
        "robust_accuracy",
    ):
        assert k in mt
    assert set(mt["robust_condition_accuracy"]) == {
        "broadening",
        "dispersion",
        "truncation",
        "combined",
        "noise5",
        "robust_accuracy",
    }
    assert 0.0 <= mt["robust_accuracy"] <= 1.0
    assert mt["digitized_total"] == 31
    assert set(mt["shift_accuracy"]) == {f"{s:.1f}" for s in np.arange(-5.0, 5.01, 1.0)}
    assert set(mt["noise_accuracy"]) == {"0", "1", "2", "3", "4", "5"}
    files = {r["file"]: r for r in meta["training_data"]}
    sha = datasets.file_sha256(datasets.data_dir() / "train" / "titan_mn_valence.npz")
    assert files["train/titan_mn_valence.npz"]["sha256"] == sha
    evaluation = {r["file"]: r["sha256"] for r in meta["evaluation_data"]}
    ref = datasets.data_dir() / "test" / "digitized_references.csv"
    assert evaluation["test/digitized_references.csv"] == datasets.file_sha256(ref)
    assert not set(evaluation) & set(files)  # evaluation files are not training files
    assert meta["n_members"] == 2
    sess = ort.InferenceSession(str(out))
    p, _ = sess.run(None, {"spectra": np.zeros((2, 300), np.float32)})
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_robustness_evaluation_fixed_seed():
    """The robustness CV perturbs with a fixed seed: same numbers twice; keys a-e + mean."""
    from hyperspy_mnvalence.training.architectures import build_model
    from hyperspy_mnvalence.training.evaluation import evaluate_robust
    from hyperspy_mnvalence.training.loop import seed_everything

    seed_everything(0)
    m = build_model("fcn")
    s, y, e = _synthetic(4)
    yi = np.searchsorted([2, 3, 4], y)
    noise = np.random.default_rng(0).normal(0, 0.01, 500)
    r1 = evaluate_robust(m, s, yi, e, noise)
    r2 = evaluate_robust(m, s, yi, e, noise)
    assert r1 == r2
    conds = ["broadening", "dispersion", "truncation", "combined", "noise5"]
    assert set(r1) == {*conds, "robust_accuracy"}
    assert r1["robust_accuracy"] == pytest.approx(np.mean([r1[c] for c in conds]))
    # without a noise model the noise condition is skipped
    assert "noise5" not in evaluate_robust(m, s, yi, e, None)


def test_selection_rule():
    from hyperspy_mnvalence.training.robustness_study import select_candidate

    runs = {
        "S_shipped": {"cv_accuracy": 0.95, "robust_accuracy": 0.80},
        "A": {"cv_accuracy": 0.93, "robust_accuracy": 0.95},  # clean CV too low
        "B": {"cv_accuracy": 0.945, "robust_accuracy": 0.85},
        "C": {"cv_accuracy": 0.96, "robust_accuracy": 0.83},
    }
    assert select_candidate(runs) == "B"
    runs["B"]["robust_accuracy"] = 0.803  # not 0.005 better than shipped
    runs["C"]["robust_accuracy"] = 0.801
    assert select_candidate(runs) == "S_shipped"


def test_own_data_npz(tmp_path):
    from hyperspy_mnvalence.training.data import load_training_data

    s, y, e = _synthetic(3)
    f = tmp_path / "mine.npz"
    np.savez(f, spectra=s, labels=y, energy_eV=e)
    d = load_training_data(f)
    assert d["spectra"].shape == s.shape
    np.testing.assert_array_equal(d["y"], np.searchsorted([2, 3, 4], y))
    assert d["training_data"][0]["file"] == "mine.npz"
    assert len(d["training_data"][0]["sha256"]) == 64
    bad = tmp_path / "bad.npz"
    np.savez(bad, spectra=s, labels=y + 3, energy_eV=e)
    with pytest.raises(ValueError, match="valences"):
        load_training_data(bad)


@needs_data
def test_shipped_model_metadata():
    """The shipped model carries the contract and honest metrics."""
    from pathlib import Path

    from hyperspy_mnvalence.training.export import read_metadata

    path = Path(__file__).resolve().parents[1] / "hyperspy_mnvalence/models/mn_valence_fcn.onnx"
    if not path.is_file():
        pytest.skip("no shipped model yet")
    meta = read_metadata(path)
    assert REQUIRED_META <= set(meta)
    assert meta["classes"] == [2, 3, 4] and meta["energy_step_eV"] == 0.1
    mt = meta["metrics"]
    for k in ("cv_accuracy", "digitized_accuracy", "shift_accuracy", "noise_accuracy"):
        assert k in mt
    assert 0.0 < mt["robust_accuracy"] <= 1.0
    sha = datasets.file_sha256(datasets.data_dir() / "train" / "titan_mn_valence.npz")
    assert any(r["sha256"] == sha for r in meta["training_data"])
    # the shipped model scores the digitized references as its metadata says
    sess = ort.InferenceSession(str(path))
    refs = datasets.load_digitized_references()
    x = np.concatenate([preprocess(d["intensity"], d["energy"]).x for d in refs])
    p, _ = sess.run(None, {"spectra": x})
    correct = int(np.sum(np.array([2, 3, 4])[p.argmax(1)] == [d["valence"] for d in refs]))
    assert correct == meta["metrics"]["digitized_correct"]


@pytest.fixture(scope="module")
def folder_smoke(tmp_path_factory, write_labelled_folder):
    """One smoke run (``--smoke --arch fcn``, seed 0) on a synthetic folder of EELS files.

    ``MNVALENCE_DATA`` points to a temporary folder that holds at most the Titan PCA noise
    (linked from the real data folder when present, so the ``pca_noise`` augmentation of
    the default configuration runs too); nothing else of the data folder is read.
    """
    from hyperspy_mnvalence.training.__main__ import main

    tmp = tmp_path_factory.mktemp("folder_smoke")
    folder = tmp / "mine"
    folder.mkdir()
    files = write_labelled_folder(folder)
    env = tmp / "data"
    (env / "train").mkdir(parents=True)
    noise = datasets.data_dir() / "train" / "titan_pca_noise.npz"
    if noise.is_file():
        (env / "train" / noise.name).symlink_to(noise.resolve())
    args = ["--smoke", "--arch", "fcn", "--seed", "0", "--data-dir", str(folder)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(datasets.DATA_ENV, str(env))
        out = tmp / "a.onnx"
        assert main([*args, "--out", str(out)]) == 0
    return {"folder": folder, "files": files, "env": env, "args": args, "out": out}


def test_smoke_cli_data_dir(folder_smoke):
    """``--data-dir``: the model card lists every file with its sha256 and label."""
    from hyperspy_mnvalence.training.export import read_metadata

    meta = read_metadata(folder_smoke["out"])
    assert REQUIRED_META <= set(meta)
    assert meta["n_members"] == 2 and meta["training"]["smoke"]
    # the smoke subset, not the files' full counts: at most 40 spectra per valence
    used = meta["training"]["spectra_used_per_class"]
    assert sum(used) == meta["training"]["spectra_used"] and max(used) <= 40
    # CV grouped by file (the smoke subset keeps the file of each spectrum)
    assert meta["metrics"]["cv_splitter"] == "StratifiedGroupKFold by file"
    assert 2 <= meta["metrics"]["cv_groups"] <= len(folder_smoke["files"])
    recs = {r["file"]: r for r in meta["training_data"]}
    for name, (valence, n, _) in folder_smoke["files"].items():
        assert recs[name]["sha256"] == datasets.file_sha256(folder_smoke["folder"] / name)
        assert recs[name]["valence"] == valence and recs[name]["n_spectra"] == n
    sess = ort.InferenceSession(str(folder_smoke["out"]))
    p, _ = sess.run(None, {"spectra": np.zeros((2, 300), np.float32)})
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_smoke_training_deterministic(folder_smoke, monkeypatch):
    """The same smoke run twice in one process gives the same ONNX outputs (CPU)."""
    from hyperspy_mnvalence.training.__main__ import main
    from hyperspy_mnvalence.training.data import load_training_data
    from hyperspy_mnvalence.training.export import read_metadata

    monkeypatch.setenv(datasets.DATA_ENV, str(folder_smoke["env"]))
    out_b = folder_smoke["out"].with_name("b.onnx")
    assert main([*folder_smoke["args"], "--out", str(out_b)]) == 0
    d = load_training_data(data_dir=folder_smoke["folder"])
    x = np.concatenate(
        [
            preprocess(d["spectra"], d["energy"], check_edge=False).x,
            np.random.default_rng(0).normal(0, 0.3, (8, 300)).astype(np.float32),
        ]
    )
    got = [
        ort.InferenceSession(str(p)).run(None, {"spectra": x}) for p in (folder_smoke["out"], out_b)
    ]
    for a, b in zip(*got, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # not vacuous: the outputs depend on the input and the members differ
    assert np.ptp(got[0][0], axis=0).max() > 1e-5 and got[0][1].max() > 1e-5
    ma, mb = (read_metadata(p)["metrics"] for p in (folder_smoke["out"], out_b))
    assert ma["cv_fold_accuracy"] == mb["cv_fold_accuracy"]


def test_smoke_fit_all_ships_one_network(folder_smoke, monkeypatch):
    """``--fit-all``: after CV, one network trained on all the data is exported."""
    from hyperspy_mnvalence.training.__main__ import main
    from hyperspy_mnvalence.training.export import read_metadata

    monkeypatch.setenv(datasets.DATA_ENV, str(folder_smoke["env"]))
    out = folder_smoke["out"].with_name("fast.onnx")
    assert main([*folder_smoke["args"], "--fit-all", "--out", str(out)]) == 0
    meta = read_metadata(out)
    ens = read_metadata(folder_smoke["out"])
    assert meta["n_members"] == 1 and ens["n_members"] == 2
    assert "final_model" in meta["metrics"]
    # the CV of the configuration is the same run as the ensemble's
    assert meta["metrics"]["cv_fold_accuracy"] == ens["metrics"]["cv_fold_accuracy"]
    assert len(meta["training"]["best_epochs"]) == 3  # two folds + the final fit
    _, std = ort.InferenceSession(str(out)).run(None, {"spectra": np.zeros((2, 300), np.float32)})
    np.testing.assert_array_equal(std, 0.0)


def test_cli_data_dir_error(tmp_path, monkeypatch, capsys, write_labelled_folder):
    """A problem with the user's folder is one error line naming the file (exit 2)."""
    from hyperspy_mnvalence.training.__main__ import main

    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "no_data"))
    write_labelled_folder(tmp_path)
    (tmp_path / "si_mn2.hspy").rename(tmp_path / "area_b.hspy")
    with pytest.raises(SystemExit) as exc:
        main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "x.onnx")])
    assert exc.value.code == 2
    assert "area_b.hspy: no label" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    (tmp_path / "area_b.hspy").rename(tmp_path / "si_mn2.hspy")
    with pytest.raises(SystemExit) as exc:  # 5 files, 6 folds: before any training
        main(["--data-dir", str(tmp_path), "--folds", "6", "--out", str(tmp_path / "x.onnx")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "5 file(s)/group(s) but 6 folds" in err and "--folds N with 2 <= N <= 5" in err
    assert not (tmp_path / "x.onnx").exists()


# --- the user's training data are checked before any training ---------------------------


def _user_npz(path, n_per_class=6, **override):
    """A small valid .npz of synthetic single-valence spectra (2 per class by default)."""
    from hyperspy_mnvalence.synthetic import synthetic_spectra

    e = np.arange(600.0, 690.0, 0.1)
    spectra = np.concatenate(
        [
            synthetic_spectra(e, v, counts=800, rng=v + k)
            for v in (2, 3, 4)
            for k in range(n_per_class)
        ]
    ).reshape(3 * n_per_class, -1)
    arrays = {
        "spectra": spectra.astype(np.float32),
        "labels": np.repeat([2, 3, 4], n_per_class),
        "energy_eV": e,
    }
    arrays.update(override)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "override, message",
    [
        ({"labels": np.repeat([2, 3, 4], 5)}, "15 labels for 18 spectra"),
        ({"labels": np.repeat([2.7, 3.7, 4.7], 6)}, "labels must be Mn valences 2, 3 or 4"),
        ({"labels": np.repeat(["MnO", "Mn2O3", "MnO2"], 6)}, "found 'Mn2O3', 'MnO'"),
        ({"labels": np.repeat([2, 3, 3], 6)}, "none of Mn4+"),
        ({"energy_eV": np.arange(600.0, 690.0, 0.1) / 1000}, "energies must be in eV"),
    ],
)
def test_user_npz_mistakes_are_clear_errors(tmp_path, override, message):
    from hyperspy_mnvalence.training.data import load_training_data

    path = _user_npz(tmp_path / "mine.npz", **override)
    with pytest.raises(ValueError, match=message):
        load_training_data(path)


def test_user_npz_labels_as_text_and_spectra_without_edge(tmp_path):
    from hyperspy_mnvalence.training.data import load_training_data

    path = _user_npz(tmp_path / "ok.npz", labels=np.repeat(["Mn2+", "3+", "4"], 6))
    d = load_training_data(path)
    np.testing.assert_array_equal(np.bincount(d["y"]), [6, 6, 6])
    with np.load(path) as z:  # the Titan files' key "valence" for the labels
        np.savez(
            tmp_path / "titan_like.npz",
            spectra=z["spectra"],
            energy_eV=z["energy_eV"],
            valence=np.repeat([2, 3, 4], 6),
        )
    np.testing.assert_array_equal(load_training_data(tmp_path / "titan_like.npz")["y"], d["y"])
    assert "n_without_edge" not in d["training_data"][0]
    # three vacuum-like spectra (a power law only) labelled Mn3+: left out and counted
    with np.load(path) as z:
        spectra = z["spectra"].copy()
        e = z["energy_eV"]
    spectra[6:9] = (2e3 * (e / 600.0) ** -3.0).astype(np.float32)
    bad = _user_npz(tmp_path / "bad.npz", spectra=spectra)
    with pytest.warns(UserWarning, match="3 of 18 training spectra show no Mn L2,3 edge"):
        d = load_training_data(bad)
    np.testing.assert_array_equal(np.bincount(d["y"]), [6, 3, 6])
    assert d["training_data"][0]["n_without_edge"] == 3


def test_cli_protects_the_shipped_model_and_checks_options(tmp_path, capsys):
    from hyperspy_mnvalence.model import default_model_path
    from hyperspy_mnvalence.training.__main__ import DEFAULT_OUT, main

    assert not DEFAULT_OUT.is_absolute()  # the current folder, not the package
    shipped = default_model_path()
    before = shipped.stat().st_mtime_ns
    for argv, message in [
        (["--smoke", "--out", str(shipped)], "would replace the shipped model"),
        (["--arch", "fcnwide"], "invalid choice: 'fcnwide'"),
        (["--epochs", "0"], "must be at least 1"),
        (["--no-aug", "pcanoise"], "Unknown augmentation 'pcanoise'"),
        (["--data", str(tmp_path)], "give an .npz file"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--out", str(tmp_path / "x.onnx")] if "--out" not in argv else argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
    assert shipped.stat().st_mtime_ns == before
    assert not (tmp_path / "x.onnx").exists()


def test_acquisition_fraction_model_exports_as_a_shipped_fraction_model(tmp_path, real_data):
    """The fold-1 run, the all-data run and its export: a model card the package
    reads, and the ONNX file computes what the Keras network does."""
    from hyperspy_mnvalence.model import load_model
    from hyperspy_mnvalence.training import acquisition_fractions as af

    common = ["--epochs", "1", "--n-mixtures", "96", "--n-eval", "24", "--arch", "fcn_lite"]
    fold, full, out = tmp_path / "fold1", tmp_path / "all", tmp_path / "fractions.onnx"
    assert af.main(["--out", str(fold), *common]) == 0
    args = ["--out", str(full), "--all-data", "--export", str(out), "--held-out", str(fold)]
    assert af.main(args + common) == 0
    m = load_model(out)
    assert m.task == "fractions" and m.metadata["n_members"] == 1
    met = m.metadata["metrics"]
    held = json.loads((fold / "fractions_suite.json").read_text())["suite"]
    assert met["acquisition_fractions"] == held  # the card quotes the held-out run
    assert set(met["mixture_mae_fractions"]) == {"Mn2+", "Mn3+", "Mn4+", "overall"}
    assert 0 <= met["digitized_mean_valence_within_0.35"] <= met["digitized_total"] == 31
    x = np.random.default_rng(0).random((4, 300)).astype(np.float32)
    net = __import__("keras").models.load_model(full / "fractions.keras")
    np.testing.assert_allclose(m.predict(x)[0], net.predict(x[..., None], verbose=0), atol=1e-5)
    with pytest.raises(SystemExit):
        af.main(["--out", str(full), "--export", str(out)])  # no --all-data / --held-out


def test_a_smoke_model_warns_when_it_reads_data(folder_smoke):
    import hyperspy_mnvalence as mnv

    s = mnv.make_demo_spectrum_image((8, 8), seed=1)
    with pytest.warns(UserWarning, match="smoke-test model .* its valences mean nothing"):
        mnv.classify_mn_valence(s, model=str(folder_smoke["out"]), show_progressbar=False)

"""The fold ensemble: calibrated probabilities, fold probabilities, out-of-scope score, all-class CAMs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fetalcns_core.bundle import load_fold_models, update_manifest, write_bundle
from fetalcns_core.ensemble import DeviceError, Ensemble, fuse_batch_norms, resolve_device
from fetalcns_core.explain import class_activation_maps, normalise_cam
from fetalcns_core.preprocess import to_batch


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(rng.integers(120, 200)), 160, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def ensemble(random_bundle) -> Ensemble:
    return Ensemble(random_bundle, device="cpu")


@pytest.fixture(scope="module")
def predictions(ensemble):
    return ensemble.predict(images(3), cams=True, batch_size=2)


def test_each_prediction_has_mean_and_fold_probabilities_that_sum_to_one(predictions, random_bundle):
    k, f = len(random_bundle.classes), len(random_bundle.folds)
    assert len(predictions) == 3
    for p in predictions:
        assert p.probs.shape == (k,) and p.fold_probs.shape == (f, k)
        assert np.isclose(p.probs.sum(), 1.0, atol=1e-5)
        assert np.allclose(p.fold_probs.sum(axis=1), 1.0, atol=1e-5)
        assert np.allclose(p.fold_probs.mean(axis=0), p.probs, atol=1e-6)
        assert not np.allclose(p.fold_probs[0], p.fold_probs[1])  # the folds are kept, not copies


def test_every_class_gets_a_normalised_cam_over_the_feature_grid(predictions, random_bundle):
    for p in predictions:
        assert p.cams is not None and p.cams.shape == (len(random_bundle.classes), 7, 7)
        assert p.cams.dtype == np.float32
        assert np.allclose(p.cams.min(axis=(1, 2)), 0.0) and np.allclose(
            p.cams.max(axis=(1, 2)), 1.0, atol=1e-5
        )


def test_results_do_not_depend_on_the_batch_size_and_cams_can_be_left_out(ensemble, predictions):
    single = ensemble.predict(images(3), cams=False, batch_size=1)
    for a, b in zip(single, predictions, strict=True):
        assert a.cams is None
        assert np.allclose(a.probs, b.probs, atol=1e-5) and np.allclose(a.fold_probs, b.fold_probs, atol=1e-5)


def test_ensemble_cam_is_the_fold_mean_of_relu_maps_normalised_once(ensemble, random_bundle):
    imgs = images(2, seed=5)
    x = to_batch(imgs)
    maps = []
    for model in load_fold_models(random_bundle):  # plain networks, batch norms not fused
        captured: list[torch.Tensor] = []
        hook = model.layer4.register_forward_hook(lambda m, i, o, store=captured: store.append(o))
        with torch.inference_mode():
            model(x)
            maps.append(class_activation_maps(captured[0], model.fc.weight).relu())
        hook.remove()
    expected = normalise_cam(torch.stack(maps).mean(dim=0))
    got = np.stack([p.cams for p in ensemble.predict(imgs)])
    assert np.abs(got - expected).max() < 1e-4


def test_fold_probabilities_are_calibrated_by_each_folds_temperature(tmp_path, random_bundle):
    states = [load_file(str(random_bundle.path / f.file)) for f in random_bundle.folds]
    hot = write_bundle(
        tmp_path / "t",
        states,
        bundle_id="t",
        classes=random_bundle.classes,
        normal_class="normal",
        temperatures=[2.0, 0.5],
        dtype="float32",
    )
    x = to_batch(images(2))
    raw, _ = Ensemble(hot, "cpu").forward(x, cams=False)
    preds = Ensemble(hot, "cpu").predict(x, cams=False)
    for i, p in enumerate(preds):
        assert np.allclose(p.fold_probs[0], torch.softmax(raw[0, i] / 2.0, -1).numpy(), atol=1e-6)
        assert np.allclose(p.fold_probs[1], torch.softmax(raw[1, i] / 0.5, -1).numpy(), atol=1e-6)


def test_out_of_scope_score_is_always_set_and_flags_only_with_a_threshold(
    tmp_path, predictions, random_bundle
):
    for p in predictions:  # msp by default, no threshold
        assert p.ood_score == pytest.approx(1.0 - p.probs.max(), abs=1e-6) and p.out_of_scope is False
    path = tmp_path / "b"
    shutil.copytree(random_bundle.path, path)
    update_manifest(path, {"ood": {"method": "energy", "threshold": -1e9}})
    ens = Ensemble(path, "cpu")
    x = to_batch(images(2))
    logits, _ = ens.forward(x, cams=False)
    energy = (-torch.logsumexp(logits, dim=-1)).mean(dim=0)  # temperatures are 1
    preds = ens.predict(x, cams=False)
    assert [p.ood_score for p in preds] == pytest.approx(energy.tolist(), abs=1e-5)
    assert all(p.out_of_scope for p in preds)


def test_progress_is_reported_and_cancel_returns_the_frames_done(ensemble):
    seen = []
    out = ensemble.predict(images(5), cams=False, batch_size=2, on_progress=lambda d, t: seen.append((d, t)))
    assert len(out) == 5 and seen == [(2, 5), (4, 5), (5, 5)]
    calls = iter([False, True])
    part = ensemble.predict(images(5), cams=False, batch_size=2, cancel=lambda: next(calls))
    assert len(part) == 2


def test_cuda_without_a_gpu_is_a_clear_error_and_auto_falls_back_to_cpu(monkeypatch, random_bundle):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA GPU: choose 'auto' or 'cpu'"):
        Ensemble(random_bundle, device="cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")


def test_batch_norm_fusion_keeps_the_outputs(random_bundle):
    plain = load_fold_models(random_bundle)[0]
    fused = fuse_batch_norms(load_fold_models(random_bundle)[0])
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = to_batch(images(2))
    with torch.inference_mode():
        assert torch.allclose(plain(x), fused(x), atol=1e-4, rtol=1e-4)


def test_a_closed_ensemble_refuses_work(random_bundle):
    with Ensemble(random_bundle, "cpu") as ens:
        assert ens.n_folds == 2 and ens.device == "cpu" and ens.classes == random_bundle.classes
    with pytest.raises(RuntimeError, match="closed"):
        ens.predict(images(1))


def test_feature_centroid_score_is_the_distance_to_the_nearest_stored_centroid(tmp_path, random_bundle):
    import torch.nn.functional as F

    from fetalcns_core.bundle import add_fold_tensors, load_bundle
    from fetalcns_core.ensemble import _features
    from fetalcns_core.manifest import BundleError

    bundle_dir = tmp_path / "b"
    shutil.copytree(random_bundle.path, bundle_dir)
    update_manifest(bundle_dir, {"ood": {"method": "feature-centroid", "threshold": 0.5}})
    with pytest.raises(BundleError, match="ood.centroids"):
        Ensemble(bundle_dir, "cpu")
    gen = torch.Generator().manual_seed(0)
    k = len(random_bundle.classes)
    cents = [
        {"ood.centroids": F.normalize(torch.randn(k, 512, generator=gen), dim=1)} for _ in random_bundle.folds
    ]
    bundle = add_fold_tensors(bundle_dir, cents)
    assert [f.sha256 for f in bundle.folds] != [f.sha256 for f in load_bundle(random_bundle.path).folds]
    imgs = images(3, seed=4)
    preds = Ensemble(bundle, "cpu").predict(imgs, cams=False)
    x = to_batch(imgs, bundle.input_spec)
    expected = []
    with torch.inference_mode():
        for model, c in zip(load_fold_models(bundle), cents, strict=True):
            unit = F.normalize(_features(model, x).mean((2, 3)), dim=1)
            expected.append(1 - (unit @ c["ood.centroids"].T).max(1).values)
    want = torch.stack(expected).mean(0)
    np.testing.assert_allclose([p.ood_score for p in preds], want.numpy(), atol=1e-3)
    assert [p.out_of_scope for p in preds] == [bool(v > 0.5) for v in want]

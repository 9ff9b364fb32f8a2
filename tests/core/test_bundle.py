"""Model bundles: writing, sha256-checked loading, weight dtypes, and refusing damaged bundles."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fetalcns_core.bundle import (
    BundleError,
    build_network,
    default_bundle_dir,
    load_bundle,
    load_fold_models,
    make_random_bundle,
    update_manifest,
    write_bundle,
)
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.weight_codec import decode_state, encode_state

CLASSES = ["normal", "encephalocele", "ventriculomegaly"]


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = rng.integers(150, 260, 2)
        base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 1), dtype=np.uint8).repeat(3, axis=2)
        img = np.kron(base, np.ones((8, 8, 1), np.uint8))[:h, :w]
        out.append(np.ascontiguousarray(img))
    return out


@pytest.fixture(scope="module")
def fp32_states(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    bundle = make_random_bundle(tmp_path_factory.mktemp("fp32") / "b", n_folds=1, seed=3, dtype="float32")
    return [load_file(str(bundle.path / f.file)) for f in bundle.folds]


def copy_bundle(bundle, tmp_path, weights: bool = True):
    dst = tmp_path / bundle.path.name
    if weights:
        shutil.copytree(bundle.path, dst)
    else:
        dst.mkdir()
        shutil.copy(bundle.path / "manifest.json", dst)
    return dst


def test_a_random_bundle_is_marked_untrained_everywhere(random_bundle):
    assert random_bundle.trained is False
    assert random_bundle.bundle_id.startswith("untrained-test-")
    assert "untrained test model" in random_bundle.title
    card = (random_bundle.path / "MODEL_CARD.md").read_text()
    assert "Untrained test model" in card and "review aid" in card
    info = random_bundle.info()
    assert info.trained is False and info.classes == CLASSES and info.sha256 == random_bundle.sha256
    assert len(random_bundle.sha256) == 64


def test_manifest_holds_classes_input_folds_and_descriptive_fields(tmp_path, fp32_states):
    bundle = write_bundle(
        tmp_path / "b",
        fp32_states,
        bundle_id="demo",
        classes=CLASSES,
        class_names=["Normal", "Encephalocele", "Ventriculomegaly"],
        normal_class="normal",
        temperatures=[1.7],
        extra={"training": {"seed": 1}, "metrics": {"auc": 0.9}, "data": {"licence": "CC BY 4.0"}},
    )
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["classes"] == CLASSES and m["normal_class"] == "normal" and m["cam_layer"] == "layer4"
    assert m["input"] == {
        "size": 224,
        "resize": 256,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert m["folds"][0]["file"] == "fold-1.safetensors" and m["folds"][0]["temperature"] == 1.7
    assert m["weights_dtype"] == "float16" and m["trained"] is True and m["metrics"] == {"auc": 0.9}
    assert bundle.folds[0].temperature == 1.7 and bundle.class_names[1] == "Encephalocele"
    assert "CC BY 4.0" in (tmp_path / "b" / "MODEL_CARD.md").read_text()


# int8 storage adds about 0.5 % noise to every weight; an untrained random ResNet34 is far more sensitive
# to weight noise than a trained one (its outputs hardly depend on the image), so int8 is held to 0.05
# here; float16 meets 0.01 by a wide margin.
@pytest.mark.parametrize(
    ("dtype", "size_ratio", "tolerance"), [("float16", 0.51, 0.01), ("int8", 0.27, 0.05)]
)
def test_reduced_precision_bundles_give_the_fp32_probabilities(
    tmp_path, fp32_states, dtype, size_ratio, tolerance
):
    kw = {"bundle_id": "x", "classes": CLASSES, "normal_class": "normal"}
    ref = write_bundle(tmp_path / "f32", fp32_states, dtype="float32", **kw)
    small = write_bundle(tmp_path / dtype, fp32_states, dtype=dtype, **kw)
    ratio = (small.path / "fold-1.safetensors").stat().st_size / (
        ref.path / "fold-1.safetensors"
    ).stat().st_size
    assert ratio < size_ratio
    imgs = images(4)
    p_ref = np.stack([p.probs for p in Ensemble(ref, "cpu").predict(imgs, cams=False)])
    p_small = np.stack([p.probs for p in Ensemble(small, "cpu").predict(imgs, cams=False)])
    assert p_ref.std(axis=0).max() > 0.005  # the images do not all get the same answer
    assert np.abs(p_ref - p_small).max() < tolerance


def test_int8_keeps_every_weight_within_half_a_step_of_its_own_output_channel():
    w = torch.randn(4, 8, 3, 3, generator=torch.Generator().manual_seed(0))
    w[0] *= 1e-3  # a quiet channel keeps its precision: the scale is per output channel
    enc = encode_state({"conv.weight": w, "bn.running_mean": torch.randn(4)}, "int8")
    assert enc["conv.weight"].dtype == torch.int8 and enc["bn.running_mean"].dtype == torch.float32
    dec = decode_state(enc, "test")
    assert set(dec) == {"conv.weight", "bn.running_mean"}
    step = w.abs().amax(dim=(1, 2, 3)) / 127
    err = (dec["conv.weight"] - w).abs().amax(dim=(1, 2, 3))
    assert (err <= step / 2 + 1e-9).all()
    assert (err[0] / w[0].abs().max()).item() < 0.005
    assert dec["conv.weight"].is_contiguous(memory_format=torch.channels_last)


def test_float32_weights_round_trip_exactly(tmp_path, fp32_states):
    bundle = write_bundle(
        tmp_path / "b", fp32_states, bundle_id="x", classes=CLASSES, normal_class="normal", dtype="float32"
    )
    (model,) = load_fold_models(bundle)
    state = model.state_dict()
    assert state.keys() == fp32_states[0].keys()
    assert all(torch.equal(state[k], fp32_states[0][k]) for k in state)


def test_meta_loading_equals_a_plainly_built_network(random_bundle):
    models = load_fold_models(random_bundle)
    for fold, model in zip(random_bundle.folds, models, strict=True):
        plain = build_network(random_bundle.architecture, len(random_bundle.classes), device="cpu")
        plain.load_state_dict(decode_state(load_file(str(random_bundle.path / fold.file)), fold.file))
        plain.eval()
        assert not any(p.is_meta for p in model.parameters())
        assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last) and not model.training
        x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
        ours, ref = model.state_dict(), plain.state_dict()
        assert ours.keys() == ref.keys() and all(torch.equal(ours[k], ref[k]) for k in ref)
        with torch.inference_mode():  # channels_last convolutions round differently
            assert torch.allclose(model(x), plain(x), atol=1e-4, rtol=1e-4)


def test_a_damaged_fold_file_is_refused_by_its_sha256(tmp_path, random_bundle):
    path = copy_bundle(random_bundle, tmp_path)
    fold = path / "fold-2.safetensors"
    data = bytearray(fold.read_bytes())
    data[len(data) // 2] ^= 0xFF
    fold.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"fold-2\.safetensors .* does not match its sha256"):
        load_fold_models(load_bundle(path))


def test_a_missing_fold_says_the_bundle_is_incomplete(tmp_path, random_bundle):
    path = copy_bundle(random_bundle, tmp_path)
    (path / "fold-2.safetensors").unlink()
    with pytest.raises(BundleError, match=r"fold-2\.safetensors is missing from bundle .* incomplete"):
        Ensemble(path, device="cpu")


def test_weights_that_do_not_fit_the_manifest_are_refused(tmp_path, random_bundle):
    path = copy_bundle(random_bundle, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["classes"].append("holoprosencephaly")
    manifest["class_names"].append("Holoprosencephaly")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not fit a resnet34 with 4 classes"):
        load_fold_models(load_bundle(path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: "{ not json", "not valid JSON"),
        (lambda m: [m], "not a JSON object"),
        (lambda m: {k: v for k, v in m.items() if k != "classes"}, "'classes' is missing"),
        (lambda m: {**m, "normal_class": "healthy"}, "normal class 'healthy' is not one of"),
        (lambda m: {**m, "classes": ["a", "a", "b"]}, "distinct"),
        (lambda m: {**m, "class_names": ["x"]}, "'class_names' must list 3"),
        (lambda m: {**m, "architecture": "vgg16"}, "architecture 'vgg16' is unknown"),
        (lambda m: {**m, "folds": []}, "lists no folds"),
        (lambda m: {**m, "folds": [{"file": "../fold-1.safetensors", "sha256": "0"}]}, "plain 'file' name"),
        (lambda m: {**m, "folds": [{**m["folds"][0], "temperature": 0}]}, "positive number"),
        (lambda m: {**m, "format_version": 99}, "update FetalCNS"),
        (lambda m: {**m, "input": {"size": 300, "resize": 256}}, "size <= resize"),
        (lambda m: {**m, "ood": {"method": "mahalanobis"}}, "a method of"),
        (lambda m: {**m, "weights_dtype": "int4"}, "weights_dtype 'int4'"),
    ],
)
def test_a_malformed_manifest_is_refused_with_the_reason(tmp_path, random_bundle, change, message):
    path = copy_bundle(random_bundle, tmp_path, weights=False)
    changed = change(json.loads((path / "manifest.json").read_text()))
    (path / "manifest.json").write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_a_folder_without_manifest_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no model bundle at .* manifest.json"):
        load_bundle(tmp_path)


def test_write_bundle_refuses_mismatched_weights_and_core_fields_in_extra(tmp_path, fp32_states):
    kw = {"bundle_id": "x", "normal_class": "normal"}
    with pytest.raises(ValueError, match="does not fit resnet34 with 4 classes"):
        write_bundle(tmp_path / "a", fp32_states, classes=[*CLASSES, "other"], **kw)
    with pytest.raises(ValueError, match="extra may not set"):
        write_bundle(tmp_path / "b", fp32_states, classes=CLASSES, extra={"classes": ["x"]}, **kw)
    with pytest.raises(ValueError, match="one positive temperature per fold"):
        write_bundle(tmp_path / "c", fp32_states, classes=CLASSES, temperatures=[1.0, 2.0], **kw)
    prefixed = [{f"module.{k}": v for k, v in s.items()} for s in fp32_states]  # DataParallel names
    assert write_bundle(tmp_path / "d", prefixed, classes=CLASSES, **kw).folds[0].file == "fold-1.safetensors"


def test_rewriting_a_bundle_with_fewer_folds_removes_the_old_fold_files(tmp_path, fp32_states):
    kw = {"bundle_id": "x", "classes": CLASSES, "normal_class": "normal"}
    write_bundle(tmp_path / "b", fp32_states * 2, **kw)
    write_bundle(tmp_path / "b", fp32_states, **kw)
    assert sorted(p.name for p in (tmp_path / "b").glob("fold-*")) == ["fold-1.safetensors"]


def test_update_manifest_sets_the_ood_threshold_and_changes_the_bundle_hash(tmp_path, random_bundle):
    path = copy_bundle(random_bundle, tmp_path)
    updated = update_manifest(path, {"ood": {"method": "energy", "threshold": -2.5}})
    assert updated.ood == {"method": "energy", "threshold": -2.5}
    assert updated.sha256 != random_bundle.sha256
    with pytest.raises(ValueError, match="cannot change"):
        update_manifest(path, {"folds": []})


def test_default_bundle_dir_finds_the_first_bundle_under_models(tmp_path, monkeypatch, random_bundle):
    models = tmp_path / "models"
    shutil.copytree(random_bundle.path, models / "b-bundle")
    shutil.copytree(random_bundle.path, models / "a-bundle")
    monkeypatch.setenv("FETALCNS_MODELS", str(models))
    assert default_bundle_dir() == models / "a-bundle"


def test_model_card_carries_hand_written_sections_after_intended_use():
    from fetalcns_core.model_card import model_card

    manifest = {
        "bundle_id": "b",
        "architecture": "resnet34",
        "classes": ["normal", "x"],
        "normal_class": "normal",
        "input": {"size": 224, "resize": 256},
        "folds": [{"file": "fold-1.safetensors", "sha256": "0" * 64, "temperature": 1.0}],
        "card_sections": [{"title": "What it has never seen", "markdown": "No anencephaly."}],
    }
    card = model_card(manifest)
    assert "## What it has never seen\n\nNo anencephaly." in card
    assert card.index("## Intended use") < card.index("## What it has never seen") < card.index("## Model")


def test_mixed_storage_keeps_small_weights_float16_and_large_ones_int8():
    from fetalcns_core.weight_codec import MIXED_INT8_MIN

    state = {
        "big.weight": torch.randn(MIXED_INT8_MIN // 64, 64),
        "small.weight": torch.randn(8, 3, 3, 3),
        "bn.running_var": torch.rand(8),
    }
    enc = encode_state(state, "mixed")
    assert enc["big.weight"].dtype == torch.int8 and "big.weight::scale" in enc
    assert enc["small.weight"].dtype == torch.float16 and "small.weight::scale" not in enc
    assert enc["bn.running_var"].dtype == torch.float32
    dec = decode_state(enc, "t")
    torch.testing.assert_close(dec["small.weight"], state["small.weight"], atol=2e-3, rtol=2e-3)
    step = state["big.weight"].abs().amax(1, keepdim=True) / 127
    assert ((dec["big.weight"] - state["big.weight"]).abs() <= step / 2 + 1e-6).all()

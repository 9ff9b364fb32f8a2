"""Reference outputs of a bundle's full-precision (float32) folds, kept beside the compressed bundle.

The shipped bundle stores its weights compressed (float16 or mixed int8/float16, dequantised on load).
This records, with the training run's float32 fold weights, (1) the ensemble's probabilities on every
image of the sample exam and (2) each fold's top class, with the margin between its two highest
probabilities, on each of its out-of-fold images, so a test can show how closely the stored bundle
follows the float32 one.

    python tools/make_reference.py RUN_DIR BUNDLE_DIR [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from fetalcns_core.bundle import load_bundle, load_fold_models, write_bundle
from fetalcns_core.crop import crop_frame
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.preprocess import to_batch
from fetalcns_core.sources import expand_paths, iter_frames, probe

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample-exam"


def cropped(path: Path) -> np.ndarray:
    frame = next(iter_frames(probe(path), every=80))
    return crop_frame(frame.image).image


def fold_top_classes(
    models: list[torch.nn.Module], rows: list[tuple[str, int]], shared: Path, spec
) -> list[tuple[int, float]]:
    """Each row's top class by its fold, and the margin between its two highest probabilities."""
    tops = []
    with torch.inference_mode():
        for rel, fold in rows:
            p = models[fold](to_batch([cropped(shared / rel)], spec)).softmax(1)[0]
            two = p.topk(2).values
            tops.append((int(p.argmax()), round(float(two[0] - two[1]), 4)))
    return tops


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("bundle_dir", type=Path)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = p.parse_args()
    shared = args.shared.resolve()
    bundle = load_bundle(args.bundle_dir)
    n_folds = len(bundle.folds)
    states = [
        load_file(str(args.run_dir / "folds" / f"fold-{k}" / "best.safetensors")) for k in range(n_folds)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = write_bundle(
            Path(tmp) / "fp32",
            states,
            bundle_id=bundle.bundle_id + "-fp32",
            architecture=bundle.architecture,
            classes=bundle.classes,
            class_names=bundle.class_names,
            normal_class=bundle.normal_class,
            input_spec=bundle.input_spec,
            temperatures=[f.temperature for f in bundle.folds],
            dtype="float32",
        )
        images = expand_paths([SAMPLE])
        preds = Ensemble(fp32, device="cpu").predict([cropped(p) for p in images], cams=False)
        sample = {
            p.name: [round(float(v), 6) for v in pred.probs] for p, pred in zip(images, preds, strict=True)
        }
        with (args.run_dir / "oof_predictions.csv").open() as fh:
            oof = list(csv.DictReader(fh))
        rows = []
        for r in oof:
            path = Path(r["file"]).resolve()
            if path.is_relative_to(shared):
                rows.append((str(path.relative_to(shared)), int(r["fold"])))
        tops = fold_top_classes(load_fold_models(fp32, "cpu"), rows, shared, bundle.input_spec)
    ref = {
        "what": "float32 fold weights of the training run, before compression: ensemble probabilities on the "
        "sample exam, and each fold's top class on its out-of-fold images (paths relative to ../shared/data)",
        "bundle_id": bundle.bundle_id,
        "classes": bundle.classes,
        "sample_exam": sample,
        "oof_top_class": [
            [rel, fold, top, margin] for (rel, fold), (top, margin) in zip(rows, tops, strict=True)
        ],
    }
    out = args.bundle_dir / "reference-fp32.json"
    out.write_text(json.dumps(ref, indent=0) + "\n")
    print(f"wrote {out}: {len(sample)} sample images, {len(rows)} out-of-fold images")


if __name__ == "__main__":
    main()

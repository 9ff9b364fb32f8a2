"""Give a bundle an out-of-scope score, choose its threshold on held-out data, and measure it.

Score (``feature-centroid``): 1 - the cosine similarity between a frame's pooled last-block features and
the nearest class centroid of the fold's training images, averaged over the folds. The centroids of each
fold are computed from the images that fold trained or validated on (never its test groups) and stored
in its fold file (``ood.centroids``). The threshold is the q-quantile (default 0.90) of the scores of the
run's out-of-fold, non-augmented images, each scored by the fold that never saw it, so about 10% of
in-scope images are flagged. Then, with the whole ensemble, the share flagged of
- the non-brain raw scanner frames (heart, abdomen, femur ...) and the frames of a fetal heart cine loop;
- held-out HC18 heads (never trained on).
Everything goes into the manifest's ``ood`` section.

    python tools/calibrate_ood.py RUN_DIR BUNDLE_DIR --scanner ../shared/data/scanner-frames \
        --video ../shared/data/video/fetal-echo-cine.avi --heads .cache/public-data/hc18-heldout.csv --write
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fetalcns_core.bundle import add_fold_tensors, load_bundle, load_fold_models, update_manifest
from fetalcns_core.crop import crop_frame
from fetalcns_core.ensemble import Ensemble, _features
from fetalcns_core.preprocess import to_batch
from fetalcns_core.sources import expand_paths, iter_frames, probe


def cropped(path: Path, every: int = 80) -> list[np.ndarray]:
    out = []
    for frame in iter_frames(probe(path), every=every):
        crop = crop_frame(frame.image)
        if crop.usable:
            out.append(crop.image)
    return out


def pooled(model: torch.nn.Module, images: list[np.ndarray], spec) -> torch.Tensor:
    feats = []
    with torch.inference_mode():
        for i in range(0, len(images), 32):
            x = to_batch(images[i : i + 32], spec)
            feats.append(F.normalize(_features(model, x).mean((2, 3)), dim=1))
    return torch.cat(feats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("bundle_dir", type=Path)
    p.add_argument("--scanner", type=Path, required=True, help="folder of out-of-scope (non-CNS) frames")
    p.add_argument("--video", type=Path, help="an out-of-scope cine loop (every 10th frame is scored)")
    p.add_argument("--heads", type=Path, required=True, help="CSV (file column) of held-out fetal heads")
    p.add_argument("--quantile", type=float, default=0.90)
    p.add_argument("--write", action="store_true", help="store centroids and threshold in the bundle")
    args = p.parse_args()
    bundle = load_bundle(args.bundle_dir)
    with (args.run_dir / "oof_predictions.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("augmented", "0") in ("0", "")]
    images = {r["file"]: cropped(Path(r["file"]))[0] for r in rows}
    centroids, in_scope = [], []
    for k, model in enumerate(load_fold_models(bundle, "cpu")):
        train = [r for r in rows if r["fold"] != str(k)]
        feats = pooled(model, [images[r["file"]] for r in train], bundle.input_spec)
        labels = [r["label"] for r in train]
        cents = torch.stack(
            [
                F.normalize(feats[[i for i, lab in enumerate(labels) if lab == c]].mean(0), dim=0)
                for c in bundle.classes
            ]
        )
        centroids.append({"ood.centroids": cents})
        test = pooled(model, [images[r["file"]] for r in rows if r["fold"] == str(k)], bundle.input_spec)
        in_scope.append(1.0 - (test @ cents.T).max(1).values)
    scores = torch.cat(in_scope).numpy()
    threshold = float(np.quantile(scores, args.quantile))
    if args.write:
        add_fold_tensors(args.bundle_dir, centroids)
        update_manifest(
            args.bundle_dir, {"ood": {"method": "feature-centroid", "threshold": round(threshold, 4)}}
        )
        ens = Ensemble(load_bundle(args.bundle_dir), device="cpu")

        def flagged(imgs: list[np.ndarray]) -> tuple[str, list[float]]:
            s = [p.ood_score for p in ens.predict(imgs, cams=False)]
            return f"{np.mean([v > threshold for v in s]):.1%} of {len(s)}", s

        heads_csv = list(csv.DictReader(args.heads.open()))
        heads, _ = flagged([img for r in heads_csv for img in cropped(Path(r["file"]))])
        scanner, scanner_scores = flagged([img for f in expand_paths([args.scanner]) for img in cropped(f)])
        measured = {
            "in_scope_oof_flagged": f"{(scores > threshold).mean():.1%} of {len(scores)}",
            "hc18_heldout_heads_flagged": heads,
            "non_cns_scanner_frames_flagged": scanner,
        }
        if args.video:
            measured["fetal_heart_cine_frames_flagged"] = flagged(cropped(args.video, every=10))[0]
        result = {
            "method": "feature-centroid",
            "score": "1 - cosine similarity of the pooled layer4 features to the nearest class centroid of "
            "the fold's training images, mean over folds",
            "threshold": round(threshold, 4),
            "chosen_on": f"{args.quantile:.0%} quantile of the out-of-fold scores of {len(scores)} "
            "non-augmented "
            "training-source images (each scored by the fold that never saw it)",
            "measured": measured,
        }
        update_manifest(args.bundle_dir, {"ood": result})
        print(json.dumps(result, indent=1))
        print("scanner frame scores:", np.round(sorted(scanner_scores), 3).tolist())
    print(
        "in-scope out-of-fold score quantiles 50/90/95%:", np.round(np.quantile(scores, [0.5, 0.9, 0.95]), 3)
    )


if __name__ == "__main__":
    main()

"""Choose a bundle's out-of-scope threshold on held-out data and measure how it behaves.

The score is the maximum-softmax score of the calibrated ensemble (1 - max mean probability). The
threshold is the q-quantile (default 0.95) of the same score over the run's out-of-fold predictions of
non-augmented images: each image scored by the fold model that never trained on it. So about 5% of
in-scope images are expected to be flagged. Then, with the whole ensemble:
- the share of the non-brain raw scanner frames (heart, abdomen, femur ...) that are flagged;
- the share of held-out HC18 heads (another source, never trained on) that are flagged.
Both go into the manifest's ``ood`` section.

    python tools/calibrate_ood.py RUN_DIR BUNDLE_DIR --scanner ../shared/data/scanner-frames \
        --heads .cache/public-data/hc18-heldout.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from fetalcns_core.bundle import load_bundle, update_manifest
from fetalcns_core.crop import crop_frame
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.sources import expand_paths, iter_frames, probe


def oof_scores(run_dir: Path) -> np.ndarray:
    with (run_dir / "oof_predictions.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("augmented", "0") in ("0", "")]
    cols = [c for c in rows[0] if c.startswith("prob_")]
    probs = np.array([[float(r[c]) for c in cols] for r in rows])
    return 1.0 - probs.max(axis=1)


def ensemble_scores(ens: Ensemble, paths: list[Path]) -> np.ndarray:
    images = []
    for path in paths:
        for frame in iter_frames(probe(path), every=80):
            crop = crop_frame(frame.image)
            if crop.usable:
                images.append(crop.image)
    preds = ens.predict(images, cams=False)
    return np.array([1.0 - float(np.max(p.probs)) for p in preds])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("bundle_dir", type=Path)
    p.add_argument("--scanner", type=Path, required=True, help="folder of out-of-scope (non-CNS) frames")
    p.add_argument("--heads", type=Path, required=True, help="CSV (file column) of held-out fetal heads")
    p.add_argument("--quantile", type=float, default=0.95)
    p.add_argument("--write", action="store_true", help="store the threshold in the bundle's manifest")
    args = p.parse_args()
    ind = oof_scores(args.run_dir)
    threshold = float(np.quantile(ind, args.quantile))
    ens = Ensemble(load_bundle(args.bundle_dir), device="cpu")
    with args.heads.open() as fh:
        head_paths = [Path(r["file"]) for r in csv.DictReader(fh)]
    heads = ensemble_scores(ens, head_paths)
    scanner = ensemble_scores(ens, expand_paths([args.scanner]))
    result = {
        "method": "msp",
        "score": "1 - max mean calibrated probability of the ensemble",
        "threshold": round(threshold, 4),
        "chosen_on": f"{args.quantile:.0%} quantile of out-of-fold scores of {len(ind)} non-augmented "
        "training-source images (each scored by the fold that never trained on it)",
        "measured": {
            "in_scope_oof_flagged": f"{(ind > threshold).mean():.1%} of {len(ind)}",
            "hc18_heldout_heads_flagged": f"{(heads > threshold).mean():.1%} of {len(heads)}",
            "non_cns_scanner_frames_flagged": f"{(scanner > threshold).mean():.1%} of {len(scanner)}",
        },
    }
    print(json.dumps(result, indent=1))
    print("scanner frame scores:", np.round(np.sort(scanner), 3).tolist())
    print("head score quantiles 5/50/95%:", np.round(np.quantile(heads, [0.05, 0.5, 0.95]), 3).tolist())
    if args.write:
        update_manifest(args.bundle_dir, {"ood": result})


if __name__ == "__main__":
    main()

"""A contact sheet of Grad-CAMs on correctly predicted out-of-fold images: does the model look at the head?

Picks up to N non-augmented images per class whose out-of-fold top class was right, runs the bundle on
them and draws the cropped image beside the ensemble CAM of the true class. Look at it: heat on the
skull and brain is expected; heat on borders, padding, text or corners means a shortcut.

    python tools/cam_contact_sheet.py RUN_DIR BUNDLE_DIR OUT.png [--per-class 4]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from fetalcns_core.bundle import load_bundle
from fetalcns_core.crop import crop_frame
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.explain import cam_on_image
from fetalcns_core.sources import iter_frames, probe

TILE = 220


def tile(img: np.ndarray, text: str) -> np.ndarray:
    h, w = img.shape[:2]
    s = TILE / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.zeros((TILE + 16, TILE, 3), np.uint8)
    out[16 : 16 + small.shape[0], : small.shape[1]] = small
    cv2.putText(out, text[:34], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("bundle_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--per-class", type=int, default=4)
    args = p.parse_args()
    bundle = load_bundle(args.bundle_dir)
    with (args.run_dir / "oof_predictions.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["augmented"] == "0"]
    cols = [f"prob_{c}" for c in bundle.classes]
    picked: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen_groups: set[str] = set()
    for r in rows:
        top = bundle.classes[int(np.argmax([float(r[c]) for c in cols]))]
        if top == r["label"] and len(picked[top]) < args.per_class and r["group"] not in seen_groups:
            picked[top].append(r)
            seen_groups.add(r["group"])
    ens = Ensemble(bundle, device="cpu")
    pairs = []
    for cls in bundle.classes:
        for r in picked[cls]:
            crop = crop_frame(next(iter_frames(probe(Path(r["file"])), every=80)).image)
            pred = ens.predict([crop.image], cams=True)[0]
            k = bundle.classes.index(cls)
            over = cam_on_image(crop.image, pred.cams[k], bundle.input_spec, alpha=0.45)
            label = f"{cls} P={pred.probs[k]:.2f} {r['group']}"
            pairs.append(np.concatenate([tile(crop.image, label), tile(over, "CAM: " + cls)], axis=1))
    cols_n = 3
    while len(pairs) % cols_n:
        pairs.append(np.zeros_like(pairs[0]))
    sheet = np.concatenate(
        [np.concatenate(pairs[i : i + cols_n], axis=1) for i in range(0, len(pairs), cols_n)], axis=0
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}: {sum(len(v) for v in picked.values())} images")


if __name__ == "__main__":
    main()

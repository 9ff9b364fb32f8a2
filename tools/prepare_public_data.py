"""Training manifests for the bundled model, from the public data in ../shared/data.

Writes, into OUT (default .cache/public-data, git-ignored):
- fetal-brain-us.csv: the fetal-brain-us manifest with absolute paths (file, label, group, augmented);
- hc18-train.csv / hc18-heldout.csv: HC18 subjects split in two halves by a hash of the subject id.
  The first half may join training as extra normals (group prefix "hc18-") and feeds the ResNet34
  distillation; the second half is never trained on and measures the false-positive rate on unseen
  normal heads from another source;
- with-hc18.csv: fetal-brain-us + hc18-train, label "hc18-normal" for HC18 (the label map sends it to
  "normal");
- distill-images.txt: the hc18-train image paths.

    python tools/prepare_public_data.py [--shared ../shared/data] [--out .cache/public-data]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ["file", "label", "group", "augmented", "gestational_age_weeks"]


def hc18_half(subject: str) -> str:
    return "train" if int(hashlib.sha256(subject.encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / ".cache" / "public-data")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fbu = args.shared / "fetal-brain-us"
    rows = []
    with (fbu / "manifest.csv").open() as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {
                    "file": str((fbu / r["file"]).resolve()),
                    "label": r["label"],
                    "group": r["group"],
                    "augmented": r["augmented"],
                    "gestational_age_weeks": "",
                }
            )
    hc = {"train": [], "heldout": []}
    hcdir = args.shared / "hc18"
    with (hcdir / "manifest.csv").open() as fh:
        for r in csv.DictReader(fh):
            hc[hc18_half(r["subject"])].append(
                {
                    "file": str((hcdir / r["file"]).resolve()),
                    "label": "hc18-normal",
                    "group": f"hc18-{r['subject']}",
                    "augmented": "0",
                    "gestational_age_weeks": "",
                }
            )

    def write(name: str, items: list[dict[str, str]]) -> None:
        with (args.out / name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, FIELDS)
            w.writeheader()
            w.writerows(items)

    write("fetal-brain-us.csv", rows)
    write("hc18-train.csv", hc["train"])
    write("hc18-heldout.csv", hc["heldout"])
    write("with-hc18.csv", rows + hc["train"])
    (args.out / "distill-images.txt").write_text("\n".join(r["file"] for r in hc["train"]) + "\n")
    print(
        f"fetal-brain-us: {len(rows)} files; HC18: {len(hc['train'])} train-half, "
        f"{len(hc['heldout'])} held-out images -> {args.out}"
    )


if __name__ == "__main__":
    main()

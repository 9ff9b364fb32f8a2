"""`fetalcns-predict`: analyse ultrasound files as one exam, without the window.

Writes the exam file (JSON), a per-frame CSV and per-frame overlay PNGs, and prints a short summary.
Exit status: 0 when the exam has a suggestion; 2 when nothing usable could be analysed (the reason is
printed on one line); 1 on a bad model bundle or option. Files that fail are listed and skipped.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from fetalcns_core import INTENDED_USE, __version__
from fetalcns_core.bundle import Bundle, BundleError, default_bundle_dir, load_bundle
from fetalcns_core.ensemble import Ensemble
from fetalcns_core.exam import AnalysisSettings, Box, Exam, FrameRecord, save_exam
from fetalcns_core.pipeline import FrameResult, analyse, frame_image_provider, overlay

log = logging.getLogger("fetalcns.predict")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fetalcns-predict",
        description="Analyse fetal brain/spine ultrasound files (images, videos, DICOM or a folder) as one "
        "exam with a FetalCNS model bundle. " + INTENDED_USE,
    )
    p.add_argument("paths", nargs="+", help="image, video or DICOM files, or folders (a folder is one exam)")
    p.add_argument("--bundle", type=Path, help="model bundle folder (default: the bundled model)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--every", type=int, default=80, help="keep every N-th video frame (default 80, the study's)"
    )
    p.add_argument("--fps", type=float, help="keep N frames per second of video instead of --every")
    p.add_argument("--crop", default="auto", choices=["auto", "none", "manual"])
    p.add_argument("--box", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="manual crop box")
    p.add_argument(
        "--out", type=Path, default=Path("fetalcns-out"), help="output folder (default ./fetalcns-out)"
    )
    p.add_argument("--pdf", type=Path, help="also write the PDF exam report to this file")
    p.add_argument("--institution", default="", help="institution name for the PDF header")
    p.add_argument("--no-overlays", action="store_true", help="do not write per-frame overlay PNGs")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--version", action="version", version=f"fetalcns {__version__}")
    return p


def _settings(args: argparse.Namespace) -> AnalysisSettings:
    if args.every is not None and args.every < 1:
        raise ValueError("--every must be 1 or more")
    if args.fps is not None and args.fps <= 0:
        raise ValueError("--fps must be more than 0")
    box = None
    if args.crop == "manual":
        if args.box is None:
            raise ValueError("--crop manual needs --box X0 Y0 X1 Y1")
        box = Box(*args.box)
    return AnalysisSettings(
        every=args.every, fps=args.fps, crop=args.crop, manual_box=box, device=args.device
    )


def _frame_name(rec: FrameRecord) -> str:
    return f"{Path(rec.source_path).stem}_f{rec.index:06d}"


def write_frames_csv(exam: Exam, path: Path) -> None:
    classes = exam.bundle.classes if exam.bundle else []
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "file",
                "sha256",
                "frame",
                "time_s",
                "crop_method",
                "crop_box",
                "usable",
                "reason",
                "top_class",
                "p_top",
                "abnormal_score",
                "ood_score",
                "excluded",
            ]
            + [f"p_{c}" for c in classes]
        )
        for rec in exam.frames:
            top, ptop, abn = "", "", ""
            if rec.probs is not None:
                k = int(np.argmax(rec.probs))
                top, ptop = classes[k], f"{rec.probs[k]:.4f}"
                if exam.bundle and exam.bundle.normal_class in classes:
                    abn = f"{1 - rec.probs[classes.index(exam.bundle.normal_class)]:.4f}"
            w.writerow(
                [
                    rec.source_path,
                    rec.source_sha256,
                    rec.index,
                    "" if rec.time_s is None else f"{rec.time_s:.3f}",
                    rec.crop_method,
                    "" if rec.crop_box is None else " ".join(map(str, rec.crop_box.as_list())),
                    int(rec.usable and not rec.out_of_scope),
                    rec.unusable_reason or "",
                    top,
                    ptop,
                    abn,
                    "" if rec.ood_score is None else f"{rec.ood_score:.4f}",
                    exam.review.excluded.get(rec.key, ""),
                ]
                + ([f"{p:.4f}" for p in rec.probs] if rec.probs is not None else [""] * len(classes))
            )


def summary_lines(exam: Exam, bundle: Bundle) -> list[str]:
    lines = []
    if not bundle.trained:
        lines.append("WARNING: UNTRAINED TEST MODEL — these numbers mean nothing.")
    names = dict(zip(bundle.classes, bundle.class_names, strict=True))
    n_failed = sum(1 for s in exam.sources if s.failed)
    lines.append(f"Model: {bundle.bundle_id} ({len(bundle.folds)} folds, {bundle.architecture})")
    lines.append(f"Inputs: {len(exam.sources)} file(s), {n_failed} failed; frames: {len(exam.frames)}")
    for src in exam.sources:
        if src.failed:
            lines.append(f"  FAILED {src.name}: {src.error}")
    d = exam.diagnosis
    if d is None:
        lines.append("AI suggestion: none (no usable frame)")
    else:
        lines.append(
            f"AI suggestion (not a diagnosis): {names.get(d.top_class, d.top_class)} "
            f"P={d.top_prob:.2f}; normal-vs-abnormal score {d.abnormal_score:.2f}; "
            f"fold agreement {d.fold_agreement:.0%}; "
            f"{d.n_frames_support}/{d.n_frames_used} frames support it"
        )
        if d.n_frames_unusable:
            lines.append(f"  {d.n_frames_unusable} frame(s) unusable or out of scope, left out")
    if exam.incomplete:
        lines.append(f"INCOMPLETE: {exam.incomplete}")
    lines.append(INTENDED_USE)
    return lines


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        settings = _settings(args)
        bundle_dir = args.bundle or default_bundle_dir()
        if bundle_dir is None:
            raise BundleError("no model bundle found: pass --bundle DIR (a folder with manifest.json)")
        bundle = load_bundle(bundle_dir)
        ensemble = Ensemble(bundle, device=args.device)
    except (BundleError, ValueError, RuntimeError) as exc:
        print(f"fetalcns-predict: {exc}", file=sys.stderr)
        return 1

    out: Path = args.out
    overlay_dir = out / "overlays"
    overlay_dir.mkdir(parents=True, exist_ok=True)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="frame", desc="analysing", file=sys.stderr)

    def on_progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    def on_frame(res: FrameResult) -> None:
        if args.no_overlays or res.prediction is None or res.crop is None:
            return
        k = int(np.argmax(res.prediction.probs))
        over = overlay(res.crop, res.prediction, k, bundle.input_spec)
        pair = np.concatenate([res.crop.image, over], axis=1)
        cv2.imwrite(
            str(overlay_dir / f"{_frame_name(res.record)}.png"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR)
        )

    exam = analyse(
        args.paths, ensemble, settings, on_progress=on_progress, on_frame=on_frame, batch_size=args.batch_size
    )
    if bar is not None:
        bar.close()
    save_exam(exam, out / "exam.fetalcns.json")
    write_frames_csv(exam, out / "frames.csv")
    if args.pdf is not None and exam.frames:
        from fetalcns_core.report import ReportOptions, build_report

        build_report(
            exam, args.pdf, frame_image_provider(exam, ensemble), ReportOptions(institution=args.institution)
        )
    for line in summary_lines(exam, bundle):
        print(line)
    print(
        f"Written: {out / 'exam.fetalcns.json'}, {out / 'frames.csv'}"
        + ("" if args.no_overlays else f", {overlay_dir}/")
        + (f", {args.pdf}" if args.pdf else "")
    )
    if exam.diagnosis is None:
        failed = [s for s in exam.sources if s.failed]
        reason = (
            failed[0].error if failed and len(failed) == len(exam.sources) else "no usable frame was found"
        )
        print(f"fetalcns-predict: {reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

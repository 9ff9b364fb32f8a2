"""The frames of the report: choosing the key frames, showing them, and the table of every frame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Table

from fetalcns_core.exam import Exam, FrameRecord
from fetalcns_core.report import theme
from fetalcns_core.report.figures import MISSING_IMAGE, FrameImage
from fetalcns_core.report.fonts import needs_fallback, rich
from fetalcns_core.report.text import DASH, ClassNames, clip_time, pct

log = logging.getLogger(__name__)

FrameImages = Callable[[FrameRecord], tuple[np.ndarray, np.ndarray] | None]

OTHER_CLASS_MIN_P = 0.5  # a frame "strongly suggests" another class at this probability or more
MAX_OTHER_CLASS_FRAMES = 2


@dataclass
class KeyFrame:
    record: FrameRecord
    row: int  # 1-based row in the frame table
    supports: bool  # True: supports the suggestion; False: strongly suggests another class


def used_frames(exam: Exam) -> list[tuple[int, FrameRecord]]:
    """(row, frame) of the frames behind the suggestion: scored, in scope, not excluded."""
    return [
        (i, f) for i, f in enumerate(exam.frames, start=1) if f.scored and f.key not in exam.review.excluded
    ]


def select_key_frames(exam: Exam, names: ClassNames, max_frames: int) -> list[KeyFrame]:
    """The used frames that best support the suggestion (highest probability of its class), plus up to
    two whose own top class differs with P >= 0.5 (the best one per other class first)."""
    dx = exam.diagnosis
    if dx is None or max_frames <= 0:
        return []
    used = used_frames(exam)
    support: list[tuple[float, int, FrameRecord]] = []
    other: list[tuple[float, int, FrameRecord, str]] = []
    for row, rec in used:
        top = names.frame_top(rec)
        p_dx = names.prob(rec, dx.top_class)
        if top is None or p_dx is None:
            continue
        if top[0] == dx.top_class:
            support.append((p_dx, row, rec))
        elif top[1] >= OTHER_CLASS_MIN_P:
            other.append((top[1], row, rec, top[0]))
    if not support:  # no frame has the mean's class as its own top: show the closest ones
        support = [(p, row, rec) for row, rec in used if (p := names.prob(rec, dx.top_class)) is not None]
    support.sort(key=lambda t: (-t[0], t[1]))
    other.sort(key=lambda t: (-t[0], t[1]))
    best_per_class: dict[str, tuple[float, int, FrameRecord, str]] = {}
    for item in other:
        best_per_class.setdefault(item[3], item)
    firsts = list(best_per_class.values())
    first_rows = {item[1] for item in firsts}
    other_pick = (firsts + [o for o in other if o[1] not in first_rows])[:MAX_OTHER_CLASS_FRAMES]
    n_other = min(len(other_pick), max(0, max_frames - 1))
    n_support = max_frames - n_other
    chosen = [KeyFrame(rec, row, True) for _, row, rec in support[:n_support]]
    chosen += [KeyFrame(rec, row, False) for _, row, rec, _ in other_pick[:n_other]]
    return chosen


def frame_source(rec: FrameRecord, exam: Exam) -> str:
    """'clip.avi, frame 160 at 0:12.8' or 'image.png' for a still image."""
    name = rec.source_path.replace("\\", "/").rsplit("/", 1)[-1] or rec.source_path
    source = next((s for s in exam.sources if s.sha256 == rec.source_sha256), None)
    if rec.kind == "image" and (source is None or not source.n_frames or source.n_frames <= 1):
        return name
    time = clip_time(rec.time_s)
    return f"{name}, frame {rec.index}" + (f" at {time}" if time != DASH else "")


def _images(rec: FrameRecord, frame_images: FrameImages) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    try:
        pair = frame_images(rec)
    except Exception as exc:  # the caller's loader failed: the report still says what it can
        log.warning("could not get the images of frame %s for the report: %s", rec.key, exc)
        return None, None, f"image not available (could not be read: {exc})"
    if pair is None:
        return None, None, MISSING_IMAGE
    try:
        crop, overlay = pair
    except (TypeError, ValueError):
        log.warning("frame_images returned %r for frame %s, expected (image, overlay)", type(pair), rec.key)
        return None, None, MISSING_IMAGE
    return crop, overlay, MISSING_IMAGE


def key_frame_blocks(
    exam: Exam, names: ClassNames, keys: list[KeyFrame], frame_images: FrameImages, width: float
) -> list[Flowable]:
    """Each key frame as cropped image and Grad-CAM side by side, with its source and top scores."""
    st = theme.styles()
    img_w, img_h = 55 * mm, 44 * mm
    info_w = width - 2 * img_w - 8
    out: list[Flowable] = []
    for n, key in enumerate(keys, start=1):
        rec = key.record
        crop, overlay, missing = _images(rec, frame_images)
        top = names.frame_top(rec)
        top_name = names(top[0]) if top else DASH
        suggested = exam.diagnosis.top_class if exam.diagnosis is not None else None
        if key.supports and top is not None and top[0] != suggested:
            head = Paragraph(
                rich(f"Key frame {n} · highest P({names(suggested)}), though its own top class differs"),
                st["ai_label"],
            )
        elif key.supports:
            head = Paragraph(f"Key frame {n} · supports the suggestion", st["ai_label"])
        else:
            head = Paragraph(rich(f"Key frame {n} · suggests another class: {top_name}"), st["alert_label"])
        ranked = sorted(zip(names.classes, rec.probs or [], strict=False), key=lambda t: -t[1])[:3]
        scores = "<br/>".join(f"{rich(names(c))}: <b>{pct(p)}</b>" for c, p in ranked)
        info = [
            head,
            Paragraph(rich(frame_source(rec, exam)), st["body"]),
            Paragraph(f"Row {key.row} of the frame table · crop: {rich(rec.crop_method)}", st["muted"]),
            Paragraph("Top scores:", st["cell_bold"]),
            Paragraph(scores or DASH, st["body"]),
        ]
        abnormal = names.abnormal(rec)
        if abnormal is not None:
            info.append(Paragraph(f"P(abnormal) {pct(abnormal)}", st["body"]))
        table = Table(
            [
                [
                    Paragraph("Cropped frame", st["cell_muted"]),
                    Paragraph(rich(f"Grad-CAM: {top_name}"), st["cell_muted"]),
                    info,
                ],
                [FrameImage(crop, img_w, img_h, missing), FrameImage(overlay, img_w, img_h, missing), ""],
            ],
            colWidths=[img_w + 4, img_w + 4, info_w],
            hAlign="LEFT",
        )
        table.setStyle(
            theme.table_style(
                [
                    ("SPAN", (2, 0), (2, 1)),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                    ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                    ("LINEBELOW", (0, -1), (-1, -1), 0.4, theme.RULE),
                    ("BOTTOMPADDING", (0, -1), (-1, -1), 5),
                ]
            )
        )
        out.append(KeepTogether([table]))
    return out


def _status(rec: FrameRecord, exam: Exam, key_no: int | None) -> tuple[str, bool]:
    """The frame's state as shown in the table, and whether it was left out of the suggestion."""
    if rec.key in exam.review.excluded:
        reason = exam.review.excluded[rec.key]
        return "excluded by reviewer" + (f": {reason}" if reason else ""), True
    if rec.out_of_scope:
        return "out of scope" + (f": {rec.unusable_reason}" if rec.unusable_reason else ""), True
    if not rec.usable or rec.probs is None:
        return "unusable" + (f": {rec.unusable_reason}" if rec.unusable_reason else ""), True
    return (f"used · key frame {key_no}" if key_no else "used"), False


def _fit(text: str, width: float, font: str, size: float) -> str:
    """`text` shortened in the middle with an ellipsis so that it fits `width` on one line."""
    if stringWidth(text, font, size) <= width:
        return text
    keep = len(text)
    while keep > 4:
        keep -= 1
        head, tail = text[: (keep + 1) // 2], text[len(text) - keep // 2 :]
        short = f"{head}…{tail}"
        if stringWidth(short, font, size) <= width:
            return short
    return text[:4] + "…"


def frame_table(exam: Exam, names: ClassNames, keys: list[KeyFrame], width: float) -> Table:
    """Every frame: row, source, frame index, time, top class, P, P(abnormal), used or why not."""
    st = theme.styles()
    fonts_regular = st["cell"].fontName
    key_rows = {k.row: n for n, k in enumerate(keys, start=1)}
    widths = [9 * mm, 40 * mm, 12 * mm, 13 * mm, 36 * mm, 15 * mm, 16 * mm]
    widths.append(width - sum(widths))
    head = ["#", "Source file", "Frame", "Time", "Top class", "P(top)", "P(abn.)", "Used / why not"]
    data: list[list[object]] = [[Paragraph(h, st["cell_bold"]) for h in head]]
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), theme.HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, theme.RULE),
        ("FONTNAME", (0, 1), (-1, -1), fonts_regular),
        ("FONTSIZE", (0, 1), (-1, -1), 7.5),
        ("LEADING", (0, 1), (-1, -1), 9),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ALIGN", (5, 1), (6, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
    for row, rec in enumerate(exam.frames, start=1):
        top = names.frame_top(rec)
        status, left_out = _status(rec, exam, key_rows.get(row))
        name = rec.source_path.replace("\\", "/").rsplit("/", 1)[-1]
        if needs_fallback(name):
            source: object = Paragraph(rich(name), st["cell"])
        else:
            source = _fit(name, widths[1] - 4, fonts_regular, 7.5)
        top_name = names(top[0]) if top else DASH
        data.append(
            [
                str(row),
                source,
                str(rec.index),
                clip_time(rec.time_s),
                Paragraph(rich(top_name), st["cell_bold" if row in key_rows else "cell"]),
                pct(top[1]) if top else DASH,
                pct(names.abnormal(rec)),
                Paragraph(rich(status), st["cell_muted" if left_out else "cell"]),
            ]
        )
        if left_out:
            style.append(("TEXTCOLOR", (0, row), (-1, row), theme.MUTED))
            style.append(("BACKGROUND", (0, row), (-1, row), theme.MISSING_BG))
        elif row in key_rows:
            style.append(("BACKGROUND", (0, row), (-1, row), theme.KEY_ROW))
        elif row % 2 == 0:
            style.append(("BACKGROUND", (0, row), (-1, row), theme.ZEBRA))
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(theme.table_style(style))
    return table

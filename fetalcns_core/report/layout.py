"""Assembly of the PDF exam report: sections in reading order, page furniture, atomic write."""

from __future__ import annotations

import io
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from reportlab import rl_config
from reportlab.platypus import BaseDocTemplate, Flowable, PageTemplate, Paragraph, Spacer
from reportlab.platypus import Frame as PageFrame

from fetalcns_core import INTENDED_USE, __version__
from fetalcns_core.exam import Exam, atomic_write_bytes
from fetalcns_core.report import theme
from fetalcns_core.report.fonts import register_fonts
from fetalcns_core.report.frames import (
    FrameImages,
    frame_table,
    key_frame_blocks,
    select_key_frames,
    used_frames,
)
from fetalcns_core.report.pages import (
    MARGIN_BOTTOM,
    MARGIN_X,
    PAGE_SIZE,
    NumberedCanvas,
    PageDecor,
)
from fetalcns_core.report.provenance import provenance
from fetalcns_core.report.summary import (
    NOT_SIGNED,
    ai_suggestion,
    biometry_table,
    clinician_decision,
    exam_details,
    untrained_banner,
)
from fetalcns_core.report.text import ClassNames, gestational_age, stamp

log = logging.getLogger(__name__)

FOOTER = (
    "A review aid for qualified clinicians, for research use only. Not a diagnosis: "
    "check every suggestion against the images."
)


@dataclass
class ReportOptions:
    """How the report is made. Everything about the exam itself comes from the `Exam`."""

    institution: str = ""  # printed in the header of every page
    timezone: tzinfo | None = None  # times are shown in this zone; None: the computer's zone
    max_key_frames: int = 6  # key frames shown with image and Grad-CAM (0: none)
    app_version: str = __version__
    generated_at: datetime | None = None  # the report time printed; None: now


def _identity(exam: Exam) -> str:
    d = exam.details
    ga = gestational_age(d)
    parts = [
        f"Patient {d.patient_name}" if d.patient_name else "",
        f"Patient ID {d.patient_id}" if d.patient_id else "",
        f"Exam {d.exam_id}" if d.exam_id else "",
        f"Exam date {d.exam_date}" if d.exam_date else "",
        f"GA {ga}" if ga else "",
    ]
    return "  ·  ".join(p for p in parts if p) or "Patient and exam not identified"


def _alerts(exam: Exam) -> list[str]:
    alerts = []
    if not exam.review.signed:
        alerts.append(NOT_SIGNED.upper())
    if exam.bundle is None:
        alerts.append("MODEL NOT RECORDED")
    elif not exam.bundle.trained:
        alerts.append("UNTRAINED TEST MODEL — RESULTS MEAN NOTHING")
    return alerts


def _story(exam: Exam, frame_images: FrameImages, options: ReportOptions, report_time: str) -> list[Flowable]:
    st = theme.styles()
    width = PAGE_SIZE[0] - 2 * MARGIN_X
    names = ClassNames(exam.bundle, exam.diagnosis.classes if exam.diagnosis is not None else None)
    keys = select_key_frames(exam, names, options.max_key_frames)
    tz = options.timezone

    story: list[Flowable] = exam_details(exam, options.institution, report_time, width)
    if exam.bundle is not None and not exam.bundle.trained:
        story += [Spacer(1, 5), untrained_banner(width)]
    story += [Spacer(1, 6), ai_suggestion(exam, names, width), Spacer(1, 5)]
    story.append(clinician_decision(exam, names, tz, width))

    story.append(Paragraph("Key frames", st["h1"]))
    if keys:
        story.append(
            Paragraph(
                "The used frames that most support the suggestion, then any that strongly suggest another "
                "class. Left: the frame as cropped for the model. Right: Grad-CAM of the frame's own top "
                "class (warm colours: the regions that drove that score).",
                st["intro"],
            )
        )
        story += key_frame_blocks(exam, names, keys, frame_images, width)
    else:
        story.append(Paragraph("No key frames: no frame was used for the suggestion.", st["body"]))

    story += biometry_table(exam, width)

    n_used = len(used_frames(exam))
    n_excluded = sum(1 for f in exam.frames if f.scored and f.key in exam.review.excluded)
    n_unusable = sum(1 for f in exam.frames if not f.scored)
    story.append(Paragraph(f"All frames ({len(exam.frames)})", st["h1"]))
    story.append(
        Paragraph(
            f"{n_used} used for the suggestion, {n_excluded} excluded by the reviewer, {n_unusable} unusable "
            "or out of scope. Key frames are shaded blue, frames left out grey. P(top): probability of the "
            "frame's own top class; P(abn.): 1 − P(normal).",
            st["intro"],
        )
    )
    if exam.frames:
        story.append(frame_table(exam, names, keys, width))
    else:
        story.append(Paragraph("The exam holds no frames.", st["body"]))

    story += provenance(exam, names, options.app_version, tz, width)
    return story


def build_report(
    exam: Exam,
    out_path: str | os.PathLike[str],
    frame_images: FrameImages,
    options: ReportOptions = ReportOptions(),
) -> Path:
    """Write the exam's PDF report to `out_path` (atomically) and return its path.

    `frame_images(record)` gives the key frames' pixels: (cropped RGB image, Grad-CAM overlay RGB of the
    frame's top class), or None when they cannot be had (the report then says so in their place).
    """
    started = time.perf_counter()
    out = Path(out_path)
    fonts = register_fonts()
    moment = options.generated_at or datetime.now(UTC)
    report_time = stamp(moment, options.timezone)
    product = f"FetalCNS {options.app_version}" if options.app_version else "FetalCNS"
    title = "Fetal CNS ultrasound — AI-assisted review report"
    decor = PageDecor(
        title=options.institution or "FetalCNS",
        identity=_identity(exam),
        report_time=f"{title}, made {report_time}",
        alerts=_alerts(exam),
        footer=FOOTER,
        product=product,
    )
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=decor.top_margin(PAGE_SIZE[0]),
        bottomMargin=MARGIN_BOTTOM,
        title=" · ".join(x for x in (title, exam.details.exam_id) if x),
        author=options.institution or product,
        subject=INTENDED_USE,
        creator=product,
        initialFontName=fonts.regular,
    )
    body = PageFrame(
        doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body", leftPadding=0, rightPadding=0
    )
    doc.addPageTemplates([PageTemplate(id="page", frames=[body], onPage=decor)])
    use_a85 = rl_config.useA85
    rl_config.useA85 = 0  # binary streams: ASCII85 would make the images a quarter larger
    try:
        doc.build(_story(exam, frame_images, options, report_time), canvasmaker=NumberedCanvas)
    finally:
        rl_config.useA85 = use_a85
    atomic_write_bytes(out, buffer.getvalue())
    log.info(
        "report written to %s (%d frames, %d bytes) in %.2f s",
        out,
        len(exam.frames),
        buffer.tell(),
        time.perf_counter() - started,
    )
    return out

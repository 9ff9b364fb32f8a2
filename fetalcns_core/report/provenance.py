"""The provenance section: program, model bundle, settings, each input with its sha256, and the
review's audit trail, enough to reproduce the report."""

from __future__ import annotations

from collections import Counter
from datetime import tzinfo

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Table

from fetalcns_core.exam import Exam
from fetalcns_core.report import theme
from fetalcns_core.report.fonts import rich
from fetalcns_core.report.text import NOT_GIVEN, ClassNames, finite, iso_stamp

_GRID = [
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 1.5),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ("LEFTPADDING", (0, 0), (-1, -1), 2),
    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
]
_HEAD = [("BACKGROUND", (0, 0), (-1, 0), theme.HEAD_BG), ("LINEBELOW", (0, 0), (-1, 0), 0.6, theme.RULE)]

RULES = {"mean": "mean of the used frames' probabilities (the study's rule)"}


def _sampling(exam: Exam) -> str:
    s = exam.settings
    fps = finite(s.fps)
    if fps is not None:
        return f"{fps:g} frames per second of video"
    if s.every:
        return f"every {s.every}th video frame" if s.every != 1 else "every video frame"
    return NOT_GIVEN


def _crop(exam: Exam) -> str:
    s = exam.settings
    text = s.crop or NOT_GIVEN
    if s.crop == "manual" and s.manual_box is not None:
        b = s.manual_box
        text += f", box x {b.x0}–{b.x1}, y {b.y0}–{b.y1} (pixels)"
    methods = Counter(f.crop_method for f in exam.frames)
    if methods:
        text += "; methods used: " + ", ".join(f"{m} {n}" for m, n in sorted(methods.items()))
    return text


def _model_rows(exam: Exam, names: ClassNames) -> list[tuple[str, str]]:
    b = exam.bundle
    if b is None:
        return [("Model bundle", "not recorded in the exam")]
    classes = "; ".join(f"{c} = {names(c)}" for c in b.classes) or NOT_GIVEN
    trained = "trained" if b.trained else "UNTRAINED TEST MODEL (random weights)"
    return [
        ("Model bundle", f"{b.bundle_id or NOT_GIVEN} ({b.architecture or NOT_GIVEN}, {trained})"),
        ("Bundle sha256 (manifest.json)", b.sha256 or NOT_GIVEN),
        ("Classes, in output order", classes),
        ("Normal class", names(b.normal_class) if b.normal_class in b.classes else NOT_GIVEN),
    ]


def provenance(
    exam: Exam, names: ClassNames, app_version: str, tz: tzinfo | None, width: float
) -> list[Flowable]:
    st = theme.styles()
    analysed = f"FetalCNS {exam.app_version}" if exam.app_version else "FetalCNS (version not recorded)"
    created = iso_stamp(exam.created_at, tz)
    if created:
        analysed += f", exam created {created}"
    rule = exam.diagnosis.rule if exam.diagnosis is not None else ""
    rows: list[tuple[str, str]] = [
        ("Report made by", f"FetalCNS {app_version}" if app_version else "FetalCNS"),
        ("Exam analysed by", analysed),
        *_model_rows(exam, names),
        ("Exam rule", RULES.get(rule, rule) or "no suggestion (no usable frame)"),
        ("Video sampling", _sampling(exam)),
        ("Crop", _crop(exam)),
        ("Device", exam.settings.device or NOT_GIVEN),
        ("Exam file format", f"{exam.schema} version {exam.schema_version}"),
    ]
    hash_rows = {"Bundle sha256 (manifest.json)"}
    data = [
        [Paragraph(rich(k), st["cell_muted"]), Paragraph(rich(v), st["hash" if k in hash_rows else "cell"])]
        for k, v in rows
    ]
    table = Table(data, colWidths=[42 * mm, width - 42 * mm], hAlign="LEFT")
    table.setStyle(theme.table_style(_GRID))
    out: list[Flowable] = [Paragraph("Provenance", st["h1"]), table, Paragraph("Input files", st["h2"])]
    out.append(_inputs(exam, width))
    if exam.review.audit:
        out.append(Paragraph("Review audit trail", st["h2"]))
        out.append(_audit(exam, tz, width))
    return out


def _inputs(exam: Exam, width: float) -> Flowable:
    st = theme.styles()
    if not exam.sources:
        return Paragraph("No input files are recorded in the exam.", st["body"])
    per_source = Counter(f.source_sha256 for f in exam.frames)
    widths = [7 * mm, 0.0, 13 * mm, 22 * mm, 98 * mm]
    widths[1] = width - sum(widths)
    head = ["#", "File", "Kind", "Frames in report / in file", "sha256"]
    data: list[list[object]] = [[Paragraph(h, st["cell_bold"]) for h in head]]
    for i, src in enumerate(exam.sources, start=1):
        in_file = str(src.n_frames) if src.n_frames else "—"
        name = rich(src.name)
        if src.failed:
            name += f'<br/><font color="#b00020">not read: {rich(src.error)}</font>'
        data.append(
            [
                Paragraph(str(i), st["cell"]),
                Paragraph(name, st["cell"]),
                Paragraph(rich(src.kind or "—"), st["cell"]),
                Paragraph(f"{per_source.get(src.sha256, 0)} / {in_file}", st["cell"]),
                Paragraph(rich(src.sha256 or "not computed"), st["hash"]),
            ]
        )
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(theme.table_style(_GRID + _HEAD))
    return table


def _audit(exam: Exam, tz: tzinfo | None, width: float) -> Flowable:
    st = theme.styles()
    data: list[list[object]] = [[Paragraph(h, st["cell_bold"]) for h in ("When", "Who", "What")]]
    for entry in exam.review.audit:
        data.append(
            [
                Paragraph(rich(iso_stamp(entry.when, tz) or "—"), st["cell"]),
                Paragraph(rich(entry.who or "—"), st["cell"]),
                Paragraph(rich(entry.what or "—"), st["cell"]),
            ]
        )
    table = Table(data, colWidths=[42 * mm, 35 * mm, width - 77 * mm], repeatRows=1, hAlign="LEFT")
    table.setStyle(theme.table_style(_GRID + _HEAD))
    return table

"""Page one of the report: exam details, intended use, the AI's suggestion, the clinician's decision,
and the biometry table."""

from __future__ import annotations

from datetime import tzinfo

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table

from fetalcns_core import INTENDED_USE
from fetalcns_core.exam import Exam
from fetalcns_core.report import theme
from fetalcns_core.report.figures import probability_chart
from fetalcns_core.report.fonts import rich
from fetalcns_core.report.text import NOT_GIVEN, ClassNames, finite, gestational_age, iso_stamp, num, pct

UNTRAINED_TITLE = "UNTRAINED TEST MODEL — THESE RESULTS MEAN NOTHING"
UNTRAINED_TEXT = (
    "The model that produced this report has random, untrained weights. It exists to test the software. "
    "Its suggestion is noise: never use it for a patient."
)
NOT_SIGNED = "NOT SIGNED — preliminary"

# Table II of the study: parameter order and names
BIOMETRY = [
    ("CRL", "Crown-rump length"),
    ("BPD", "Biparietal diameter"),
    ("HC", "Head circumference"),
    ("AC", "Abdominal circumference"),
    ("FL", "Femur length"),
    ("TCD", "Transcerebellar diameter (Cereb)"),
]


def _p(text: str, style: str) -> Paragraph:
    return Paragraph(text, theme.styles()[style])


def _boxed(
    rows: list[list[Flowable]],
    width: float,
    border: colors.Color,
    background: colors.Color,
    *,
    col_widths: list[float] | None = None,
    border_width: float = 1.2,
    extra: tuple[tuple, ...] = (),
) -> Table:
    """A framed, tinted table: one voice of the report (AI, clinician, warning) per box."""
    table = Table(rows, colWidths=col_widths or [width], hAlign="LEFT")
    table.setStyle(
        theme.table_style(
            [
                ("BOX", (0, 0), (-1, -1), border_width, border),
                ("BACKGROUND", (0, 0), (-1, -1), background),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                *extra,
            ]
        )
    )
    return table


def exam_details(exam: Exam, institution: str, report_time: str, width: float) -> list[Flowable]:
    """The title, the patient and exam, and the intended-use statement."""
    d = exam.details
    ga = gestational_age(d)
    pairs = [
        ("Patient name", d.patient_name),
        ("Patient ID", d.patient_id),
        ("Exam ID", d.exam_id),
        ("Exam date", d.exam_date),
        ("Gestational age", ga),
        ("Report made", report_time),
    ]
    if institution:
        pairs.insert(0, ("Institution", institution))
    cells = [[_p(rich(k), "cell_muted"), _p(rich(v) if v else NOT_GIVEN, "body")] for k, v in pairs]
    rows = [cells[i] + (cells[i + 1] if i + 1 < len(cells) else ["", ""]) for i in range(0, len(cells), 2)]
    label_w = 26 * mm
    grid = Table(rows, colWidths=[label_w, width / 2 - label_w] * 2, hAlign="LEFT")
    grid.setStyle(
        theme.table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    out: list[Flowable] = [_p("Fetal CNS ultrasound — AI-assisted review report", "title"), grid]
    if d.notes:
        out.append(_p(f"<b>Exam notes:</b> {rich(d.notes)}", "body"))
    out.append(Spacer(1, 3))
    out.append(
        _boxed(
            [[_p(f"<b>Intended use.</b> {rich(INTENDED_USE)}", "intended")]],
            width,
            theme.RULE,
            colors.white,
            border_width=0.6,
        )
    )
    return out


def untrained_banner(width: float) -> Table:
    return _boxed(
        [[_p(rich(UNTRAINED_TITLE), "banner")], [_p(rich(UNTRAINED_TEXT), "banner_small")]],
        width,
        theme.ALERT,
        theme.ALERT,
        extra=(("TOPPADDING", (0, 0), (-1, 0), 6), ("BOTTOMPADDING", (0, -1), (-1, -1), 6)),
    )


def _n_folds(exam: Exam) -> int | None:
    for rec in exam.frames:
        if rec.scored and rec.fold_probs:
            return len(rec.fold_probs)
    return None


def ai_suggestion(exam: Exam, names: ClassNames, width: float) -> Table:
    """The AI's suggestion: top class, normal-vs-abnormal, agreement, support, and the class bars."""
    dx = exam.diagnosis
    label = "AI SUGGESTION — computed by the model, not a diagnosis"
    if dx is None:
        n_unusable = sum(1 for f in exam.frames if not f.scored)
        text = (
            f"No AI suggestion: no frame could be used ({len(exam.frames)} frames, {n_unusable} unusable or "
            f"out of scope, {len(exam.review.excluded)} excluded by the reviewer). See the frame table."
        )
        return _boxed(
            [[_p(rich(label), "ai_label")], [_p(rich(text), "body")]], width, theme.AI_DARK, theme.AI_BG
        )

    left: list[Flowable] = [
        _p(rich(label), "ai_label"),
        _p(f"{rich(names(dx.top_class))}&nbsp;&nbsp;{pct(dx.top_prob)}", "ai_big"),
        _p(rich(f"most likely class: mean over the {dx.n_frames_used} used frames"), "muted"),
        Spacer(1, 4),
    ]
    facts = []
    abnormal = finite(dx.abnormal_score)
    if names.normal_class in dx.classes and abnormal is not None:
        facts.append(
            f"<b>Normal vs abnormal:</b> P(abnormal) {pct(abnormal)}, "
            f"P({rich(names(names.normal_class))}) {pct(1.0 - abnormal)}"
        )
    folds = _n_folds(exam)
    agree = finite(dx.fold_agreement)
    if folds and agree is not None:
        facts.append(
            f"<b>Fold agreement:</b> {round(agree * folds)} of {folds} folds name this class; "
            f"fold spread {pct(dx.fold_spread)}"
        )
    elif agree is not None:
        facts.append(f"<b>Fold agreement:</b> {pct(agree, 0)}")
    facts.append(
        f"<b>Supporting frames:</b> {dx.n_frames_support} of {dx.n_frames_used} used frames have it as "
        "their own top class"
    )
    vote = rich(names(dx.majority_class))
    differs = " (differs from the mean)" if dx.majority_class != dx.top_class else ""
    facts.append(f"<b>Majority vote of frames:</b> {vote}{differs}")
    facts.append(
        f"<b>Frames not used:</b> {dx.n_frames_unusable} unusable or out of scope, "
        f"{dx.n_frames_excluded} excluded by the reviewer"
    )
    left += [_p(f, "body") for f in facts]
    weak = []
    if agree is not None and agree < 1.0:
        weak.append("the folds disagree")
    if finite(dx.top_prob) is not None and dx.top_prob < 0.5:
        weak.append("the top probability is below 50 %")
    if differs:
        weak.append("the frames' majority vote names another class")
    if weak:
        left.append(_p(rich("Uncertain: " + "; ".join(weak) + ". Review with care."), "alert_label"))

    chart_w = width * 0.42
    rows = [(names(c), finite(p), c == dx.top_class) for c, p in zip(dx.classes, dx.probs, strict=False)]
    right = [_p("Exam probability per class", "ai_label"), probability_chart(rows, chart_w, theme.styles())]
    left_w = width - chart_w - 12
    return _boxed(
        [[left, right]],
        width,
        theme.AI_DARK,
        theme.AI_BG,
        col_widths=[left_w, chart_w + 12],
        border_width=1.5,
    )


def clinician_decision(exam: Exam, names: ClassNames, tz: tzinfo | None, width: float) -> Table:
    """The clinician's decision and signature, in a box of its own; unsigned is shown in red."""
    rv = exam.review
    dx = exam.diagnosis
    signed = rv.signed
    label_style = "dec_label" if signed else "alert_label"
    label = "CLINICIAN'S DECISION — SIGNED" if signed else "CLINICIAN'S DECISION"
    rows: list[list[Flowable]] = [[_p(label, label_style)]]
    if not signed:
        rows.append([_p(rich(NOT_SIGNED.upper()), "alert_big")])
    ai_said = f"AI suggested {names(dx.top_class)}" if dx is not None else "no AI suggestion"
    if rv.decision == "agree":
        chosen = rv.decided_class or (dx.top_class if dx is not None else None)
        text = f"Agreed with the AI suggestion: <b>{rich(names(chosen))}</b>"
    elif rv.decision == "override":
        text = (
            f"Overrode the AI suggestion. Clinician's class: <b>{rich(names(rv.decided_class))}</b> "
            f"({rich(ai_said)})"
        )
    else:
        text = "No decision recorded."
    prefix = "" if signed or rv.decision is None else "Draft, not signed: "
    rows.append([_p(prefix + text, "dec_big" if signed else "body")])
    if dx is not None and rv.decision == "agree" and rv.decided_class and rv.decided_class != dx.top_class:
        rows.append(
            [
                _p(
                    rich(
                        f"Check: the decision names {names(rv.decided_class)}, but the AI suggestion is now "
                        f"{names(dx.top_class)} (frames changed after the decision)."
                    ),
                    "alert_label",
                )
            ]
        )
    if rv.notes:
        # one row per line, so that long notes can run onto the next page
        lines = [line for line in rv.notes.splitlines() if line.strip()] or [rv.notes]
        rows.append([_p(f"<b>Notes:</b> {rich(lines[0])}", "body")])
        rows += [[_p(rich(line), "body")] for line in lines[1:]]
    if rv.excluded:
        rows.append(
            [_p(f"Frames excluded by the reviewer: {len(rv.excluded)} (reasons in the frame table)", "body")]
        )
    if signed:
        when = iso_stamp(rv.signed_at, tz)
        on = f" <b>on</b> {rich(when)}" if when else " (time of signing not recorded)"
        rows.append([_p(f"<b>Signed by</b> {rich(rv.signed_by)}{on}", "body")])
    else:
        rows.append([_p("This report is preliminary until a clinician signs the review.", "body")])
    border = theme.SIGNED_DARK if signed else theme.ALERT
    background = theme.SIGNED_BG if signed else theme.ALERT_BG
    return _boxed(rows, width, border, background, border_width=2.0)


def biometry_table(exam: Exam, width: float) -> list[Flowable]:
    """The measured biometry and deviations in SD, as in the study's Table II."""
    d = exam.details
    known = [k for k, _ in BIOMETRY]
    keys = known + sorted((set(d.biometry_mm) | set(d.biometry_sd)) - set(known))
    full = dict(BIOMETRY)
    present = [
        k
        for k in keys
        if finite(d.biometry_mm.get(k)) is not None or finite(d.biometry_sd.get(k)) is not None
    ]
    out: list[Flowable] = [_p("Biometry", "h1")]
    ga = gestational_age(d)
    if not present:
        out.append(_p(rich("No biometry entered." + (f" Gestational age {ga}." if ga else "")), "body"))
        return out
    st = theme.styles()
    data = [
        [
            _p("Parameter", "cell_bold"),
            _p("Measured (mm)", "cell_bold_right"),
            _p("Deviation (SD)", "cell_bold_right"),
        ]
    ]
    notation = []
    for key in present:
        name = f"{full[key]} ({key})" if key in full else key
        sd = finite(d.biometry_sd.get(key))
        data.append(
            [
                Paragraph(rich(name), st["cell"]),
                Paragraph(num(d.biometry_mm.get(key)), st["cell_right"]),
                Paragraph(f"{num(sd, signed=True)} SD" if sd is not None else "—", st["cell_right"]),
            ]
        )
        if sd is not None:
            notation.append(f"{'Cereb' if key == 'TCD' else key}({sd:+.1f}SD)")
    table = Table(data, colWidths=[70 * mm, 30 * mm, 30 * mm], hAlign="LEFT", repeatRows=1)
    table.setStyle(
        theme.table_style(
            [
                ("BACKGROUND", (0, 0), (-1, 0), theme.HEAD_BG),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, theme.RULE),
                ("LINEBELOW", (0, -1), (-1, -1), 0.6, theme.RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    out.append(table)
    if notation:
        summary = " ".join(x for x in (ga, ",".join(notation)) if x)
        out.append(_p(rich(f"In the notation of the study's Table II: {summary}"), "muted"))
    return out

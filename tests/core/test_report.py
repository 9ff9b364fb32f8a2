"""The PDF exam report: content in the text layer, pagination, fonts, key frames, missing fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from fetalcns_core import INTENDED_USE
from fetalcns_core.exam import (
    AuditEntry,
    BundleInfo,
    Exam,
    ExamDetails,
    FrameRecord,
    Review,
    SourceFile,
    diagnose,
)
from fetalcns_core.report import MISSING_IMAGE, ReportOptions, build_report, resources_dir
from fetalcns_core.report.frames import select_key_frames
from fetalcns_core.report.text import ClassNames

CLASSES = ["normal", "anencephaly", "encephalocele", "holoprosencephaly", "rachischisis"]
NAMES = ["Normal", "Anencephaly", "Encephalocele", "Holoprosencephaly", "Rachischisis"]
CHINESE_NAME = "王小明"
FIXED_TIME = datetime(2024, 5, 1, 6, 3, tzinfo=UTC)
XIAMEN = timezone(timedelta(hours=8), "CST")


def _probs(rng: np.random.Generator, top: int, strength: float, n_folds: int) -> tuple[list, list]:
    alpha = np.ones(len(CLASSES))
    alpha[top] = strength
    folds = rng.dirichlet(alpha, size=n_folds)
    return [float(p) for p in folds.mean(axis=0)], folds.tolist()


def make_exam(
    n_frames: int,
    *,
    signed: bool = False,
    trained: bool = True,
    seed: int = 0,
    details: ExamDetails | None = None,
) -> Exam:
    """An exam of one video (n_frames - 1 sampled frames) and one still image, mostly holoprosencephaly."""
    rng = np.random.default_rng(seed)
    video = SourceFile("/data/exams/2023041705/cine_0001.avi", "a1" * 32, "video", n_frames * 80, 25.0)
    still = SourceFile("/data/exams/2023041705/still.png", "b2" * 32, "image", 1)
    frames: list[FrameRecord] = []
    for i in range(n_frames):
        src = still if i == n_frames - 1 else video
        index = 0 if src is still else i * 80
        rec = FrameRecord(
            source_path=src.path,
            source_sha256=src.sha256,
            index=index,
            time_s=None if src is still else index / 25.0,
            kind=src.kind,
            crop_method="auto-fan",
        )
        if n_frames > 1 and i % 23 == 5:
            rec.usable, rec.unusable_reason = False, "blank frame"
        else:
            top = 1 if i % 17 == 3 else 3  # a few frames suggest anencephaly
            rec.probs, rec.fold_probs = _probs(rng, top, 12.0 if top == 3 else 30.0, 5)
            if n_frames > 1 and i % 31 == 7:
                rec.out_of_scope, rec.unusable_reason = True, "not like the training images"
        frames.append(rec)
    review = Review()
    if n_frames > 10:
        review.excluded = {frames[2].key: "motion blur", frames[40 % n_frames].key: "wrong plane"}
    if signed:
        review.decision, review.decided_class = "agree", "holoprosencephaly"
        review.notes = "Fused thalami; no interhemispheric fissure. 融合丘脑。"
        review.signed_by, review.signed_at = "Dr. Li Na 李娜", "2024-05-01T14:20:00+08:00"
        review.audit = [AuditEntry("2024-05-01T14:20:00+08:00", "Dr. Li Na 李娜", "signed")]
    bundle = BundleInfo("fetalcns-resnet34-5fold-v1", "c3" * 32, CLASSES, NAMES, "normal", trained)
    exam = Exam(
        app_version="0.1.0",
        created_at="2024-05-01T14:00:00+08:00",
        details=details
        or ExamDetails(
            exam_id="2023041705",
            patient_id="P-0042",
            patient_name=CHINESE_NAME,
            exam_date="2023-04-17",
            ga_weeks=22,
            ga_days=1,
            biometry_mm={"BPD": 48.2, "HC": 181.0, "AC": 160.5, "FL": 35.1, "TCD": 23.0},
            biometry_sd={"BPD": -1.3, "HC": -2.5, "AC": -1.5, "FL": -1.5, "TCD": 0.6},
        ),
        sources=[video, still],
        frames=frames,
        bundle=bundle,
        review=review,
    )
    exam.diagnosis = diagnose(frames, CLASSES, "normal", review.excluded)
    return exam


def random_images(rec: FrameRecord) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rec.index)
    crop = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    overlay = crop.copy()
    overlay[:, :, 0] = 255
    return crop, overlay


def _build(tmp_path: Path, exam: Exam, images=random_images, **opts) -> tuple[Path, list[str]]:
    options = ReportOptions(
        institution="Xiamen University First Affiliated Hospital", generated_at=FIXED_TIME
    )
    for k, v in opts.items():
        setattr(options, k, v)
    out = build_report(exam, tmp_path / "report.pdf", images, options)
    pages = [p.extract_text() for p in PdfReader(out).pages]
    return out, pages


def _flat(pages: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(pages))


def test_one_frame_exam_holds_suggestion_decision_disclaimer_bundle_and_hashes(tmp_path):
    exam = make_exam(1, signed=True)
    out, pages = _build(tmp_path, exam)
    text = _flat(pages)
    assert out.read_bytes().startswith(b"%PDF")
    assert "Holoprosencephaly" in text and "AI SUGGESTION" in text
    assert "Agreed with the AI suggestion: Holoprosencephaly" in text
    assert _flat([INTENDED_USE]) in text
    assert "fetalcns-resnet34-5fold-v1" in text and "c3" * 32 in text
    for src in exam.sources:
        assert src.sha256 in text and src.name in text
    assert "Xiamen University First Affiliated Hospital" in text
    assert "NOT SIGNED" not in text


def test_300_frame_exam_paginates_lists_every_frame_and_numbers_pages(tmp_path):
    exam = make_exam(300)
    _, pages = _build(tmp_path, exam)
    n = len(pages)
    assert n >= 6
    for i, page in enumerate(pages, start=1):
        assert f"Page {i} of {n}" in page
        assert "NOT SIGNED" in page  # the mark on every page
        assert "not a diagnosis" in page.lower()  # the footer on every page
    text = _flat(pages)
    rows = {int(m) for m in re.findall(r"(?m)^(\d+)\ncine_0001\.avi", "\n".join(pages))}
    assert rows == set(range(1, 300))  # every video frame has its row (the still image is row 300)
    assert "excluded by reviewer: motion blur" in text and "unusable: blank frame" in text
    assert "out of scope: not like the training images" in text


def test_unsigned_exam_is_marked_preliminary(tmp_path):
    exam = make_exam(12)
    _, pages = _build(tmp_path, exam)
    assert "NOT SIGNED — PRELIMINARY" in pages[0]
    assert "No decision recorded" in pages[0]
    assert "Signed by" not in _flat(pages)


def test_signed_exam_shows_signer_time_and_notes_apart_from_the_ai(tmp_path):
    exam = make_exam(12, signed=True)
    _, pages = _build(tmp_path, exam, timezone=XIAMEN)
    text = _flat(pages)
    assert "Signed by Dr. Li Na 李娜 on 2024-05-01 14:20 CST (UTC+08:00)" in text
    assert "Fused thalami" in text and "融合丘脑" in text
    assert "report, made 2024-05-01 14:03 CST (UTC+08:00)" in text
    assert text.index("AI SUGGESTION") < text.index("CLINICIAN'S DECISION")
    assert "NOT SIGNED" not in text


def test_override_names_the_clinicians_class_and_the_ais(tmp_path):
    exam = make_exam(12, signed=True)
    exam.review.decision, exam.review.decided_class = "override", "encephalocele"
    _, pages = _build(tmp_path, exam)
    assert "Clinician's class: Encephalocele (AI suggested Holoprosencephaly)" in _flat(pages[:1])


def test_agree_with_a_changed_suggestion_is_flagged(tmp_path):
    exam = make_exam(12, signed=True)
    exam.review.decided_class = "normal"
    _, pages = _build(tmp_path, exam)
    assert "the decision names Normal, but the AI suggestion is now Holoprosencephaly" in _flat(pages)


def test_untrained_bundle_is_announced_on_every_page(tmp_path):
    exam = make_exam(60, trained=False)
    _, pages = _build(tmp_path, exam)
    assert "UNTRAINED TEST MODEL — THESE RESULTS MEAN NOTHING" in _flat(pages[:1])
    assert all("UNTRAINED TEST MODEL" in p for p in pages)


def test_chinese_name_is_in_the_text_layer_with_embedded_fonts(tmp_path):
    out, pages = _build(tmp_path, make_exam(3))
    assert CHINESE_NAME in pages[0]
    fonts = {}
    for page in PdfReader(out).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font.get("/DescendantFonts")
            desc = (descendant[0].get_object() if descendant else font).get("/FontDescriptor")
            embedded = desc is not None and "/FontFile2" in desc.get_object()
            fonts[str(font["/BaseFont"]).split("+")[-1]] = embedded
    assert fonts.get("DroidSansFallback") is True and fonts.get("DejaVuSans") is True
    assert all(fonts.values()), f"fonts not embedded: {fonts}"


def test_missing_optional_fields_print_no_none_or_nan(tmp_path):
    exam = make_exam(8, details=ExamDetails())
    exam.app_version = exam.created_at = ""
    exam.sources[0].fps = None
    exam.sources[0].n_frames = None
    exam.frames[0].probs = [float("nan")] * len(CLASSES)
    exam.frames[1].time_s = None
    exam.frames[2].unusable_reason = None
    exam.frames[2].usable = False
    exam.settings.every, exam.settings.fps = None, None
    exam.review = Review(decision="override", decided_class=None, signed_by="Dr. X", signed_at=None)
    exam.review.excluded = {exam.frames[3].key: ""}
    _, pages = _build(tmp_path, exam, institution="")
    text = _flat(pages)
    assert not re.search(r"\b(None|nan|NaN|null)\b", text), re.findall(
        r".{40}\b(?:None|nan|null)\b.{20}", text
    )
    assert "Patient name not given" in text


def test_exam_without_bundle_or_diagnosis_still_reports(tmp_path):
    exam = make_exam(4)
    exam.bundle, exam.diagnosis = None, None
    _, pages = _build(tmp_path, exam)
    text = _flat(pages)
    assert "No AI suggestion" in text and "MODEL NOT RECORDED" in text
    assert not re.search(r"\b(None|nan)\b", text)


def test_unavailable_images_are_explained(tmp_path):
    _, pages = _build(tmp_path, make_exam(5), images=lambda rec: None)
    assert MISSING_IMAGE in _flat(pages)


def test_key_frames_are_used_frames_that_best_support_plus_other_class(tmp_path):
    exam = make_exam(120)
    names = ClassNames(exam.bundle)
    keys = select_key_frames(exam, names, 6)
    assert len(keys) == 6
    support = [k for k in keys if k.supports]
    other = [k for k in keys if not k.supports]
    assert len(other) == 2 and len(support) == 4
    for k in keys:
        assert k.record.scored and k.record.key not in exam.review.excluded
    top = exam.diagnosis.top_class
    best = sorted(
        (names.prob(f, top) for f in exam.frames if f.scored and f.key not in exam.review.excluded),
        reverse=True,
    )
    assert [names.prob(k.record, top) for k in support] == best[:4]
    assert all(names.frame_top(k.record)[0] != top and names.frame_top(k.record)[1] >= 0.5 for k in other)
    assert len(select_key_frames(exam, names, 1)) == 1 and select_key_frames(exam, names, 1)[0].supports


def test_fonts_are_found_in_a_pyinstaller_bundle(tmp_path, monkeypatch):
    (tmp_path / "resources" / "fonts").mkdir(parents=True)
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    monkeypatch.delenv("FETALCNS_RESOURCES", raising=False)
    assert resources_dir() == tmp_path / "resources"


def test_the_embedded_fonts_and_licences_ship_in_resources():
    fonts = resources_dir() / "fonts"
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DroidSansFallbackFull.ttf"):
        assert (fonts / name).stat().st_size < 5 * 1024 * 1024
    assert "Apache License" in (fonts / "LICENSE-Apache-2.0-DroidSansFallback.txt").read_text()
    assert "Bitstream" in (fonts / "LICENSE-DejaVu.txt").read_text()


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 2)), "not an image", np.zeros((0, 0, 3), np.uint8)])
def test_unusable_images_from_the_caller_become_a_placeholder(tmp_path, bad):
    _, pages = _build(tmp_path, make_exam(2), images=lambda rec: (bad, bad))
    assert MISSING_IMAGE in _flat(pages)


def test_long_notes_and_audit_trail_run_onto_further_pages(tmp_path):
    exam = make_exam(20, signed=True)
    exam.review.notes = "\n".join(f"Line {i}: " + "finding " * 25 for i in range(120))
    exam.review.audit = [AuditEntry("2024-05-01T14:20:00+08:00", "Dr. Li", f"step {i}") for i in range(150)]
    _, pages = _build(tmp_path, exam)
    text = _flat(pages)
    assert "Line 119:" in text and "step 149" in text


def test_a_failing_image_loader_is_reported_in_place_of_the_image(tmp_path):
    def broken(rec):
        raise OSError("cine_0001.avi: permission denied")

    _, pages = _build(tmp_path, make_exam(5), images=broken)
    assert "image not available (could not be read: cine_0001.avi: permission denied)" in _flat(pages)

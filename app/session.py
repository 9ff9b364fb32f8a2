"""The open exam and the clinician's work on it: every change is audited and autosaved atomically.

No analysis happens here: the exam's suggestion is recomputed by `fetalcns_core.exam.rediagnose`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from app import paths
from fetalcns_core.exam import Exam, ExamDetails, FrameRecord, load_exam, now_iso, rediagnose, save_exam

log = logging.getLogger(__name__)


def frame_label(record: FrameRecord) -> str:
    """A frame's name for people: its file, and for videos and cines its time (or frame number)."""
    name = record.source_path.replace("\\", "/").rsplit("/", 1)[-1]
    if record.kind == "image":
        return name
    where = f"{record.time_s:.1f} s" if record.time_s is not None else f"frame {record.index}"
    return f"{name} · {where}"


class ReviewLockedError(RuntimeError):
    """The review is signed off; reopen it before changing anything."""


class ReviewError(ValueError):
    """A review action that cannot be done as asked (message says why)."""


class ExamSession:
    """Holds one exam and its file. Review changes go through here so that none escapes the audit."""

    def __init__(self, exam: Exam | None = None, path: Path | None = None) -> None:
        self.exam = exam or Exam()
        self.path = path
        self.on_saved: Callable[[Path], None] | None = None
        self.on_save_failed: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ file
    @classmethod
    def open(cls, path: str | Path) -> ExamSession:
        return cls(load_exam(path), Path(path))

    @property
    def locked(self) -> bool:
        return self.exam.review.signed

    @property
    def has_frames(self) -> bool:
        return bool(self.exam.frames)

    def save(self, path: Path | None = None) -> Path | None:
        """Write the exam file atomically; a new exam goes to the user's exam folder."""
        if path is not None:
            self.path = path
        if self.path is None:
            self.path = paths.default_exam_path(self.exam.details.exam_id)
        try:
            save_exam(self.exam, self.path)
        except (OSError, ValueError) as exc:
            message = f"could not save the exam file: {exc}. Choose another place with File > Save As."
            log.error("exam file not saved: %s", exc)
            if self.on_save_failed is not None:
                self.on_save_failed(message)
            return None
        log.info(
            "exam saved (%d frames, %d audit entries)", len(self.exam.frames), len(self.exam.review.audit)
        )
        if self.on_saved is not None:
            self.on_saved(self.path)
        return self.path

    def _change(self, who: str, what: str) -> None:
        self.exam.record(who or "unknown", what)
        self.save()

    def _check_unlocked(self) -> None:
        if self.locked:
            raise ReviewLockedError(
                f"the review was signed off by {self.exam.review.signed_by}; reopen it to make changes"
            )

    # ------------------------------------------------------------------ decision
    def _classes(self) -> list[str]:
        return list(self.exam.bundle.classes) if self.exam.bundle else []

    def agree(self, who: str) -> None:
        self._check_unlocked()
        diagnosis = self.exam.diagnosis
        if diagnosis is None:
            raise ReviewError("there is no AI suggestion to agree with: no frame could be scored")
        review = self.exam.review
        review.decision, review.decided_class = "agree", diagnosis.top_class
        self._change(who, f"agreed with the AI suggestion: {diagnosis.top_class}")

    def override(self, who: str, decided_class: str) -> None:
        self._check_unlocked()
        if decided_class not in self._classes():
            raise ReviewError(f"'{decided_class}' is not one of this model's classes: {self._classes()}")
        review = self.exam.review
        review.decision, review.decided_class = "override", decided_class
        suggestion = self.exam.diagnosis.top_class if self.exam.diagnosis else "none"
        self._change(who, f"overrode the AI suggestion ({suggestion}) with: {decided_class}")

    def clear_decision(self, who: str) -> None:
        self._check_unlocked()
        review = self.exam.review
        if review.decision is None:
            return
        review.decision, review.decided_class = None, None
        self._change(who, "cleared the decision")

    # ------------------------------------------------------------------ frames
    def exclude(self, who: str, key: str, reason: str = "excluded by the reviewer") -> None:
        self._check_unlocked()
        record = self.exam.frame(key)  # KeyError for a frame not in the exam
        if key in self.exam.review.excluded:
            return
        self.exam.review.excluded[key] = reason
        self._after_frames_changed(who, f"excluded frame {frame_label(record)} ({key}): {reason}")

    def restore(self, who: str, key: str) -> None:
        self._check_unlocked()
        if self.exam.review.excluded.pop(key, None) is None:
            return
        self._after_frames_changed(who, f"restored frame {frame_label(self.exam.frame(key))} ({key})")

    def _after_frames_changed(self, who: str, what: str) -> None:
        before = self.exam.diagnosis.top_class if self.exam.diagnosis else None
        rediagnose(self.exam)
        after = self.exam.diagnosis.top_class if self.exam.diagnosis else None
        review = self.exam.review
        if after != before:
            what += f"; the AI suggestion changed from {before} to {after}"
            if review.decision == "agree":
                review.decision, review.decided_class = None, None
                what += "; the earlier agreement was cleared"
        self._change(who, what)

    # ------------------------------------------------------------------ text
    def set_notes(self, who: str, notes: str) -> None:
        self._check_unlocked()
        if notes == self.exam.review.notes:
            return
        self.exam.review.notes = notes
        self._change(who, "edited the review notes")

    def set_details(self, who: str, details: ExamDetails) -> None:
        self._check_unlocked()
        old = self.exam.details
        changed = [
            f.name for f in dataclasses.fields(details) if getattr(details, f.name) != getattr(old, f.name)
        ]
        if not changed:
            return
        self.exam.details = copy.deepcopy(details)
        self._change(who, "edited exam details: " + ", ".join(changed))

    # ------------------------------------------------------------------ sign-off
    def sign_off(self, name: str) -> None:
        self._check_unlocked()
        name = name.strip()
        if not name:
            raise ReviewError("type your name to sign off the review")
        review = self.exam.review
        if review.decision is None:
            raise ReviewError("agree with the AI suggestion or choose a class before signing off")
        review.signed_by, review.signed_at = name, now_iso()
        self._change(name, f"signed off the review: {review.decided_class} ({review.decision})")

    def reopen(self, who: str, reason: str = "") -> None:
        if not self.locked:
            return
        who = who.strip()
        if not who:
            raise ReviewError("type your name to reopen a signed review")
        review = self.exam.review
        signer = review.signed_by
        review.signed_by, review.signed_at = None, None
        self._change(who, f"reopened the review signed by {signer}" + (f": {reason}" if reason else ""))

"""The clinician's review in the main window: decisions, exclusions, notes, details, sign-off (a mixin).

Every change goes through `ExamSession`, which records it in the audit trail and autosaves the exam file.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable

from PySide6.QtWidgets import QInputDialog

from app.logsetup import SCRUB
from app.session import ReviewError, ReviewLockedError
from app.strip import FAILED_PREFIX, entry_for
from fetalcns_core.exam import ExamDetails


class ReviewOps:
    """Needs the MainWindow attributes: session, review_panel, details, strip, results, current_key."""

    def _who(self) -> str:
        return self.review_panel.reviewer_name() or getpass.getuser()

    def _review(self, change: Callable[[str], object]) -> bool:
        """Apply one review change through the session; a refused change becomes a message."""
        if not self.session.has_frames:
            self.notify("Open and analyse an exam first.", kind="info")
            return False
        try:
            change(self._who())
        except ReviewLockedError as exc:
            self.notify(f"The review is locked: {exc}.", kind="info")
            return False
        except ReviewError as exc:
            self.notify(str(exc).capitalize() + ".", kind="info")
            return False
        self.refresh_exam()
        return True

    def agree(self) -> None:
        self._review(self.session.agree)

    def override(self, cls: str) -> None:
        self._review(lambda who: self.session.override(who, cls))

    def toggle_exclude(self) -> None:
        key = self.current_key
        if key is None or key.startswith(FAILED_PREFIX):
            return
        if key in self.session.exam.review.excluded:
            self._review(lambda who: self.session.restore(who, key))
        else:
            self._review(lambda who: self.session.exclude(who, key))
        exam = self.session.exam
        result = self.results.get(key)
        thumb = result.crop.image if result is not None and result.crop is not None else None
        self.strip.set_entry(entry_for(exam.frame(key), exam.bundle, thumb, exam.review.excluded.get(key)))

    def sign_off(self) -> None:
        self.review_panel.flush_notes()
        name = self.review_panel.reviewer_name()
        if not name:
            self.notify("Type your name in the Clinician decision panel to sign off.", kind="info")
            self.review_panel.reviewer.setFocus()
            return
        self.prefs.reviewer = name
        self._review(lambda _who: self.session.sign_off(name))

    def reopen_review(self, reason: str | None = None) -> None:
        if not self.session.locked:
            return
        if reason is None:
            reason, ok = QInputDialog.getText(self, "Reopen signed review", "Why is the review reopened?")
            if not ok:
                return
        self._review(lambda who: self.session.reopen(self.review_panel.reviewer_name() or who, reason))

    def _details_edited(self, details: ExamDetails) -> None:
        SCRUB.set_secrets([details.exam_id, details.patient_id, details.patient_name, details.notes])
        if self.session.has_frames:
            if not self._review(lambda who: self.session.set_details(who, details)):
                self.details.set_details(self.session.exam.details)
        else:
            self.session.exam.details = details

    def _flush_edits(self) -> None:
        self.details.flush()
        self.review_panel.flush_notes()

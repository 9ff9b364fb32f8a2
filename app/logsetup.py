"""The app's log file: rotating, in the user's log folder, with no patient text in it.

Every line written to it is scrubbed of file paths and names (they often carry patient names or ids)
and of any text the user typed into the exam's details or the review.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from app import paths

LOG_NAME = "fetalcns.log"

# a path with a folder separator, or a quoted file name with an extension
_PATH_RE = re.compile(
    r"""(?:[A-Za-z]:)?(?:[\\/][^\s'"\\/:]+)+[\\/]?|(?<=['"])[^'"\n]+\.[A-Za-z0-9]{2,5}(?=['"])"""
)


class PatientTextScrubber:
    """Removes paths and user-typed patient text from log lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: list[str] = []

    def set_secrets(self, texts: Iterable[str]) -> None:
        """Texts to blank out (patient id, name, exam id, notes ...); short ones are ignored."""
        words = {t.strip() for t in texts if t and len(t.strip()) >= 3}
        with self._lock:
            self._secrets = sorted(words, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            text = text.replace(secret, "<redacted>")
        return _PATH_RE.sub("<path>", text)


class ScrubbingFormatter(logging.Formatter):
    """Formats a record (message and traceback) and scrubs the result; the record itself is untouched."""

    def __init__(self, scrubber: PatientTextScrubber, fmt: str) -> None:
        super().__init__(fmt)
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self.scrubber.scrub(super().format(record))


SCRUB = PatientTextScrubber()


def remove_logging() -> None:
    """Close the app's log file handler (tests, or before setting it up again)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fetalcns", False):
            root.removeHandler(handler)
            handler.close()


def setup_logging(level: int = logging.INFO, folder: Path | None = None) -> Path:
    """Send all logging to a rotating file in the user's log folder; returns the file's path."""
    folder = folder or paths.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / LOG_NAME
    remove_logging()
    root = logging.getLogger()
    handler = logging.handlers.RotatingFileHandler(
        log_path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler._fetalcns = True  # type: ignore[attr-defined]
    handler.setFormatter(ScrubbingFormatter(SCRUB, "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    return log_path


def install_excepthook(on_error: Callable[[str], None] | None = None) -> None:
    """Log uncaught exceptions and tell the user, instead of letting the app die (Qt would abort)."""

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        logging.getLogger("app").error("unexpected error", exc_info=(kind, value, tb))
        if on_error is not None:
            try:
                on_error(
                    f"Something went wrong ({kind.__name__}: {value}). It was written to the log; "
                    "your exam file is saved after every change."
                )
            except Exception:  # the message itself must never bring the app down
                logging.getLogger("app").exception("could not show the error message")

    sys.excepthook = hook

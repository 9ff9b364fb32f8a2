"""Where the app keeps its files: exams, logs, the style sheet.

`FETALCNS_HOME`, when set, puts the data and log folders under one directory (tests, portable use).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import platformdirs

APP_NAME = "FetalCNS"
EXAM_SUFFIX = ".fetalcns.json"
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def _home() -> Path | None:
    home = os.environ.get("FETALCNS_HOME")
    return Path(home) if home else None


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    home = _home()
    return home / "log" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def exams_dir() -> Path:
    return data_dir() / "exams"


def default_exam_path(exam_id: str = "", when: datetime | None = None) -> Path:
    """A new exam file in the user's exam folder, named after the exam id or the time, never overwriting."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", exam_id).strip("._")[:60]
    if not stem:
        stem = (when or datetime.now()).strftime("exam-%Y%m%d-%H%M%S")
    folder = exams_dir()
    path = folder / f"{stem}{EXAM_SUFFIX}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{EXAM_SUFFIX}"
        n += 1
    return path


def is_exam_file(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(EXAM_SUFFIX)


def style_sheet_path() -> Path:
    return RESOURCES / "style" / "dark.qss"


def sample_exam_dir() -> Path:
    return RESOURCES / "sample-exam"

"""The user's preferences (QSettings): device, model bundle, video sampling, recent exams, reviewer name."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 10


class Prefs:
    def __init__(self, settings: QSettings | None = None) -> None:
        if settings is None:
            home = os.environ.get("FETALCNS_HOME")
            if home:  # portable / test use: everything under one folder
                settings = QSettings(str(Path(home) / "settings.ini"), QSettings.Format.IniFormat)
            else:
                settings = QSettings("FetalCNS", "FetalCNS")
        self.qs = settings

    def _get(self, key: str, default: object, kind: type) -> object:
        value = self.qs.value(key, default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    @property
    def device(self) -> str:
        value = str(self._get("analysis/device", "auto", str))
        return value if value in ("auto", "cpu", "cuda") else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.qs.setValue("analysis/device", value)

    @property
    def bundle_dir(self) -> str:
        """A chosen bundle folder, or '' for the bundled model."""
        return str(self._get("analysis/bundle_dir", "", str))

    @bundle_dir.setter
    def bundle_dir(self, value: str) -> None:
        self.qs.setValue("analysis/bundle_dir", value)

    @property
    def every(self) -> int:
        return max(1, int(self._get("analysis/every", 80, int)))

    @every.setter
    def every(self, value: int) -> None:
        self.qs.setValue("analysis/every", int(value))

    @property
    def fps(self) -> float | None:
        value = float(self._get("analysis/fps", 0.0, float))
        return value if value > 0 else None

    @fps.setter
    def fps(self, value: float | None) -> None:
        self.qs.setValue("analysis/fps", float(value or 0.0))

    @property
    def reviewer(self) -> str:
        return str(self._get("review/name", "", str))

    @reviewer.setter
    def reviewer(self, value: str) -> None:
        self.qs.setValue("review/name", value)

    @property
    def intended_use_seen(self) -> bool:
        return bool(self._get("about/intended_use_seen", False, bool))

    @intended_use_seen.setter
    def intended_use_seen(self, value: bool) -> None:
        self.qs.setValue("about/intended_use_seen", bool(value))

    @property
    def recent(self) -> list[str]:
        value = self.qs.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        items = [p for p in self.recent if p != path]
        self.qs.setValue("files/recent", [path, *items][:MAX_RECENT])

    def clear_recent(self) -> None:
        self.qs.setValue("files/recent", [])

    def sync(self) -> None:
        self.qs.sync()

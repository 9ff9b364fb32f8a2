"""Formatting of values for the report. A missing or non-finite value is shown as a dash, never as
"None" or "nan"."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

from fetalcns_core.exam import BundleInfo, ExamDetails, FrameRecord

DASH = "—"
NOT_GIVEN = "not given"


def finite(value: object) -> float | None:
    """`value` as a float when it is a finite number, else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def pct(value: object, digits: int = 1) -> str:
    number = finite(value)
    return DASH if number is None else f"{100.0 * number:.{digits}f}\u00a0%"  # no break before %


def num(value: object, digits: int = 1, signed: bool = False) -> str:
    number = finite(value)
    if number is None:
        return DASH
    return f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"


def clip_time(time_s: object) -> str:
    """A time within a video as m:ss.s, or a dash for a still image."""
    seconds = finite(time_s)
    if seconds is None or seconds < 0:
        return DASH
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def gestational_age(details: ExamDetails) -> str:
    """'22w1d' as in the study's Table II; empty when the weeks are not given."""
    if details.ga_weeks is None:
        return ""
    days = details.ga_days if details.ga_days is not None else 0
    return f"{details.ga_weeks}w{days}d"


def local_time(moment: datetime, tz: tzinfo | None) -> datetime:
    """`moment` in `tz` (the computer's zone when None); a naive moment is taken as local time."""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(tz) if tz is not None else moment.astimezone()


def stamp(moment: datetime, tz: tzinfo | None) -> str:
    """'2024-05-01 14:03 CST (UTC+08:00)': the time, its zone's name if it has one, and the offset."""
    moment = local_time(moment, tz)
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    utc = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    name = moment.tzname() or ""
    zone = f"{name} ({utc})" if name and not name.startswith(("UTC", "GMT", "+", "-")) else utc
    return f"{moment:%Y-%m-%d %H:%M} {zone}"


def iso_stamp(text: str | None, tz: tzinfo | None) -> str:
    """An ISO time from the exam file shown like `stamp`; text that does not parse is shown as is."""
    if not text:
        return ""
    try:
        return stamp(datetime.fromisoformat(text), tz)
    except ValueError:
        return text


class ClassNames:
    """Display names of the bundle's classes (falls back to the class id)."""

    def __init__(self, bundle: BundleInfo | None, classes: list[str] | None = None) -> None:
        self.classes = list(bundle.classes) if bundle is not None and bundle.classes else list(classes or [])
        names = list(bundle.class_names) if bundle is not None else []
        self._names = {
            cls: (names[i] if i < len(names) and names[i] else cls) for i, cls in enumerate(self.classes)
        }
        self.normal_class = bundle.normal_class if bundle is not None else None

    def __call__(self, cls: str | None) -> str:
        if not cls:
            return NOT_GIVEN
        return self._names.get(cls, cls)

    def index(self, cls: str | None) -> int | None:
        return self.classes.index(cls) if cls in self.classes else None

    def frame_top(self, rec: FrameRecord) -> tuple[str, float] | None:
        """The frame's own top class and its probability, if the frame was scored."""
        if not rec.probs or len(rec.probs) != len(self.classes):
            return None
        values = [finite(p) for p in rec.probs]
        if any(v is None for v in values):
            return None
        best = max(range(len(values)), key=lambda k: values[k])  # type: ignore[arg-type, return-value]
        return self.classes[best], float(values[best])  # type: ignore[arg-type]

    def prob(self, rec: FrameRecord, cls: str | None) -> float | None:
        k = self.index(cls)
        if k is None or not rec.probs or len(rec.probs) != len(self.classes):
            return None
        return finite(rec.probs[k])

    def abnormal(self, rec: FrameRecord) -> float | None:
        """1 - P(normal) of one frame; None without a normal class or scores."""
        p_normal = self.prob(rec, self.normal_class)
        return None if p_normal is None else 1.0 - p_normal

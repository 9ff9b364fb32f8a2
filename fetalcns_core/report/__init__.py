"""The PDF exam report: the AI's suggestion, the clinician's decision, key frames, every frame, biometry
and provenance, for the patient's record. A review aid, not a diagnosis."""

from fetalcns_core.report.figures import MISSING_IMAGE
from fetalcns_core.report.fonts import FontError, resources_dir
from fetalcns_core.report.layout import ReportOptions, build_report

__all__ = ["MISSING_IMAGE", "FontError", "ReportOptions", "build_report", "resources_dir"]

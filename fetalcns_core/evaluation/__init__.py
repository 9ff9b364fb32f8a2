"""Evaluation of a model: figures with bootstrap intervals, calibration, subgroups, plots and summary.

``evaluate_predictions(rows, classes, normal_class)`` returns every figure as a JSON-ready dict;
``write_outputs(result, out_dir)`` writes metrics.json, summary.md and the PNG plots. The CLI is
``fetalcns-eval``.
"""

from fetalcns_core.evaluation.evaluate import evaluate_predictions
from fetalcns_core.evaluation.outputs import read_metrics, write_outputs
from fetalcns_core.evaluation.table import (
    PredictionTable,
    PredictionTableError,
    read_predictions_csv,
    table_from_records,
    write_predictions_csv,
)

__all__ = [
    "PredictionTable",
    "PredictionTableError",
    "evaluate_predictions",
    "read_metrics",
    "read_predictions_csv",
    "table_from_records",
    "write_outputs",
    "write_predictions_csv",
]

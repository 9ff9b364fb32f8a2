"""`fetalcns`: the desktop app. `fetalcns [PATH ...]` or `fetalcns --open PATH` opens files, a folder or a
saved exam file at start."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from fetalcns_core import INTENDED_USE, __version__

log = logging.getLogger("app")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fetalcns",
        description=f"FetalCNS {__version__}: review fetal brain and spine ultrasound with an AI suggestion. "
        + INTENDED_USE,
    )
    parser.add_argument(
        "paths", nargs="*",
        help="images, videos, DICOM files or a folder (one exam), or a saved exam file (*.fetalcns.json)",
    )  # fmt: skip
    parser.add_argument(
        "--open", dest="open_paths", action="append", default=[], metavar="PATH",
        help="open PATH at start (same as giving it as an argument); may be repeated",
    )  # fmt: skip
    parser.add_argument("--bundle", metavar="DIR", help="use this model bundle folder (kept in the settings)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="compute device (kept in the settings)"
    )
    parser.add_argument("--version", action="version", version=f"FetalCNS {__version__}")
    return parser


def load_style(app) -> None:  # app: QApplication
    from app.paths import style_sheet_path

    path = style_sheet_path()
    try:
        app.setStyleSheet(path.read_text(encoding="utf-8"))
    except OSError as exc:
        log.warning("style sheet not loaded (%s); the default look is used", exc.strerror or exc)


def create_app(argv: Sequence[str] | None = None):
    """The QApplication with the app's name, style and dark palette (reused if one exists)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("FetalCNS")
    app.setOrganizationName("FetalCNS")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    load_style(app)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    from app.logsetup import install_excepthook, setup_logging

    log_file = setup_logging()
    install_excepthook()
    log.info("FetalCNS %s starting", __version__)
    app = create_app()
    from app.main_window import MainWindow
    from app.prefs import Prefs

    prefs = Prefs()
    if args.bundle:
        prefs.bundle_dir = str(Path(args.bundle).resolve())
    if args.device:
        prefs.device = args.device
    window = MainWindow(prefs, log_file=log_file)
    install_excepthook(window.notify)
    window.show()
    if not prefs.intended_use_seen:
        window.show_about(first_start=True)
    targets = [*args.paths, *args.open_paths]
    if targets:
        window.open_paths([str(Path(p).resolve()) for p in targets])
    code = app.exec()
    log.info("FetalCNS closed")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())

"""Menus, toolbar and keyboard shortcuts of the main window (keyboard-first: every action has a key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QMenu, QStyle, QToolBar


@dataclass
class Actions:
    open_files: QAction
    open_folder: QAction
    open_exam: QAction
    open_sample: QAction
    recent: QMenu
    save_as: QAction
    export_pdf: QAction
    quit: QAction
    cancel: QAction
    overlay: QAction
    view_mode: QAction
    zoom_in: QAction
    zoom_out: QAction
    fit: QAction
    next_frame: QAction
    previous_frame: QAction
    exclude: QAction
    agree: QAction
    sign_off: QAction
    reopen: QAction
    settings: QAction
    about: QAction
    log_folder: QAction


def _action(
    window: QMainWindow,
    text: str,
    keys: QKeySequence | str | list | None,
    slot: Callable[[], object],
    tip: str = "",
    icon: QStyle.StandardPixmap | None = None,
) -> QAction:
    action = QAction(text, window)
    if keys:
        if isinstance(keys, list):
            action.setShortcuts([QKeySequence(k) for k in keys])
        else:
            action.setShortcut(QKeySequence(keys))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(f"{tip} ({action.shortcut().toString()})" if keys else tip)
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    action.triggered.connect(lambda *_: slot())
    window.addAction(action)
    return action


def build_actions(w) -> Actions:  # w: MainWindow (not imported: it imports this module)
    sp = QStyle.StandardPixmap
    a = Actions(
        open_files=_action(
            w,
            "&Open images, video or DICOM…",
            QKeySequence.StandardKey.Open,
            w.choose_files,
            "Open files as one exam",
            sp.SP_DialogOpenButton,
        ),
        open_folder=_action(
            w,
            "Open &folder…",
            "Ctrl+Shift+F",
            w.choose_folder,
            "Open a folder as one exam",
            sp.SP_DirOpenIcon,
        ),
        open_exam=_action(
            w,
            "Open saved &exam…",
            "Ctrl+Shift+O",
            w.choose_exam_file,
            "Reopen a saved exam file, with its review",
            sp.SP_FileDialogContentsView,
        ),
        open_sample=_action(
            w, "Open the &sample exam", None, w.open_sample, "Analyse the bundled sample exam"
        ),
        recent=QMenu("Open &recent", w),
        save_as=_action(w, "Save exam &as…", "Ctrl+Shift+S", w.save_as, "Save the exam file elsewhere"),
        export_pdf=_action(
            w,
            "Export &PDF report…",
            "Ctrl+E",
            w.export_pdf,
            "Write the exam's PDF report",
            sp.SP_DialogSaveButton,
        ),
        quit=_action(w, "&Quit", QKeySequence.StandardKey.Quit, w.close),
        cancel=_action(
            w, "&Cancel analysis", "Esc", w.cancel_analysis, "Stop the running analysis", sp.SP_BrowserStop
        ),
        overlay=_action(
            w, "Grad-CAM &overlay", "O", w.viewer.overlay_check.toggle, "Show or hide the overlay"
        ),
        view_mode=_action(
            w, "&Cropped / original", "C", w.viewer.toggle_mode, "Switch cropped and original view"
        ),
        zoom_in=_action(w, "Zoom &in", ["+", "="], lambda: w.viewer.view.zoom_by(1.25)),
        zoom_out=_action(w, "Zoom &out", "-", lambda: w.viewer.view.zoom_by(0.8)),
        fit=_action(w, "&Fit", "0", w.viewer.view.fit),
        next_frame=_action(w, "&Next frame", "J", lambda: w.strip.step(1)),
        previous_frame=_action(w, "&Previous frame", "K", lambda: w.strip.step(-1)),
        exclude=_action(
            w,
            "E&xclude / restore frame",
            "X",
            w.toggle_exclude,
            "Leave the current frame out of the exam suggestion",
        ),
        agree=_action(w, "&Agree with the AI suggestion", "A", w.agree),
        sign_off=_action(w, "&Sign off review", "Ctrl+Return", w.sign_off, "Sign and lock the review"),
        reopen=_action(w, "&Reopen signed review…", None, w.reopen_review),
        settings=_action(
            w,
            "&Settings…",
            "Ctrl+,",
            w.open_settings,
            "Device, model bundle, video sampling",
            sp.SP_FileDialogDetailedView,
        ),
        about=_action(w, "&About and intended use", "F1", w.show_about, "", sp.SP_MessageBoxInformation),
        log_folder=_action(w, "Show &log file location", None, w.show_log_location),
    )
    a.overlay.setCheckable(True)
    a.overlay.setChecked(True)
    a.overlay.triggered.disconnect()
    a.overlay.toggled.connect(w.viewer.overlay_check.setChecked)
    w.viewer.overlay_check.toggled.connect(a.overlay.setChecked)
    a.cancel.setEnabled(False)
    # Up/Down move through the frames from the image too (the strip has them natively); not window-wide,
    # so that lists and combo boxes keep their own arrow keys
    for key, delta in (("Down", 1), ("Up", -1)):
        shortcut = QShortcut(QKeySequence(key), w.viewer)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(lambda d=delta: w.strip.step(d))

    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    for item in (a.open_files, a.open_folder, a.open_exam, a.open_sample):
        file_menu.addAction(item)
    file_menu.addMenu(a.recent)
    file_menu.addSeparator()
    for item in (a.save_as, a.export_pdf):
        file_menu.addAction(item)
    file_menu.addSeparator()
    file_menu.addAction(a.quit)
    view_menu = bar.addMenu("&View")
    for item in (a.overlay, a.view_mode, a.zoom_in, a.zoom_out, a.fit, a.next_frame, a.previous_frame):
        view_menu.addAction(item)
    review_menu = bar.addMenu("&Review")
    for item in (a.agree, a.exclude, a.sign_off, a.reopen):
        review_menu.addAction(item)
    tools = bar.addMenu("&Tools")
    tools.addAction(a.cancel)
    tools.addAction(a.settings)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a.about)
    help_menu.addAction(a.log_folder)

    toolbar = QToolBar("Main", w)
    toolbar.setObjectName("mainToolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for item in (a.open_files, a.open_folder, a.open_exam):
        toolbar.addAction(item)
    toolbar.addSeparator()
    toolbar.addAction(a.cancel)
    toolbar.addSeparator()
    toolbar.addAction(a.export_pdf)
    toolbar.addAction(a.settings)
    toolbar.addAction(a.about)
    w.addToolBar(toolbar)
    return a

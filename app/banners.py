"""Banners above the image: the untrained-model warning, a missing model, and non-modal messages."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget


class Banner(QFrame):
    """One line of text in a coloured bar (kind: danger | warning | info), with an optional button."""

    def __init__(self, kind: str, closable: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"banner_{kind}")
        self.setProperty("kind", kind)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton()
        self.button.hide()
        self._action: Callable[[], None] | None = None
        self.button.clicked.connect(self._run)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        if closable:
            close = QToolButton(text="✕", toolTip="Dismiss")
            close.clicked.connect(self.hide)
            layout.addWidget(close)
        self.hide()

    def show_text(self, text: str, button: str = "", action: Callable[[], None] | None = None) -> None:
        self.label.setText(text)
        self._action = action
        self.button.setText(button)
        self.button.setVisible(bool(button and action))
        self.show()

    def _run(self) -> None:
        if self._action is not None:
            self._action()


class MessageBar(Banner):
    """Non-modal messages (e.g. a file that could not be read); keeps them all for the session."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("info", closable=True, parent=parent)
        self.messages: list[str] = []

    def add(self, text: str, kind: str = "warning") -> None:
        self.messages.append(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        more = f"  (+{len(self.messages) - 1} earlier: hover to see them)" if len(self.messages) > 1 else ""
        self.setToolTip("\n".join(self.messages[-20:]))
        self.show_text(text + more)

    def reset(self) -> None:
        self.messages.clear()
        self.hide()

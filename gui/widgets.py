"""Small display widgets: the message banner and the emotion probability bars."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from cloak.emodb import EMOTIONS

BEFORE_COLOR = QColor("#3b6ea8")
AFTER_COLOR = QColor("#d07a2c")


class Banner(QLabel):
    """A coloured one-line message across the window (hidden when empty)."""

    STYLES = {
        "info": "background:#e6f0fb; color:#17406d; border:1px solid #b8d2ef;",
        "success": "background:#e7f5ea; color:#1d5b2a; border:1px solid #b9dfc1;",
        "warning": "background:#fff4d6; color:#6b4b00; border:1px solid #f0d58a;",
        "error": "background:#fde8e7; color:#8c1d18; border:1px solid #f2b8b5;",
    }

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        self.level = level
        self.setText(text)
        self.setStyleSheet(f"QLabel {{ {self.STYLES[level]} border-radius:4px; padding:6px 10px; }}")
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.show_message("", "info")


class ProbabilityBars(QWidget):
    """Horizontal bars: a recognizer's probability per emotion (``classes``), before and after cloaking.

    ``before`` / ``after`` hold exactly what is displayed (``{}`` when nothing is shown).
    """

    ROW = 30
    LABEL_W = 78
    VALUE_W = 42

    def __init__(self, parent=None, classes: tuple[str, ...] = EMOTIONS) -> None:
        super().__init__(parent)
        self.classes = tuple(classes)
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumHeight(self.sizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(300, 24 + self.ROW * len(self.classes))

    def set_probabilities(self, before: dict[str, float] | None = None, after: dict[str, float] | None = None) -> None:
        self.before = dict(before or {})
        self.after = dict(after or {})
        self.update()

    @staticmethod
    def top(probs: dict[str, float]) -> str | None:
        return max(probs, key=probs.get) if probs else None

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        w = self.width()
        font = QFont(self.font())
        p.setFont(font)
        fm = p.fontMetrics()
        # legend
        x = 0
        for color, text in ((BEFORE_COLOR, "before"), (AFTER_COLOR, "after cloaking")):
            p.fillRect(QRectF(x, 6, 12, 10), color)
            p.setPen(self.palette().text().color())
            p.drawText(QRectF(x + 16, 0, 120, 22), Qt.AlignVCenter | Qt.AlignLeft, text)
            x += 22 + fm.horizontalAdvance(text) + 12
        bar_x = self.LABEL_W
        bar_w = max(10, w - self.LABEL_W - self.VALUE_W - 4)
        top_before, top_after = self.top(self.before), self.top(self.after)
        for i, emotion in enumerate(self.classes):
            y = 24 + i * self.ROW
            bold = emotion in (top_before, top_after)
            font.setBold(bold)
            p.setFont(font)
            p.setPen(self.palette().text().color())
            p.drawText(QRectF(0, y, self.LABEL_W - 6, self.ROW - 4), Qt.AlignVCenter | Qt.AlignRight, emotion)
            p.fillRect(QRectF(bar_x, y + 2, bar_w, self.ROW - 8), QColor(0, 0, 0, 18))
            for j, (probs, color) in enumerate(((self.before, BEFORE_COLOR), (self.after, AFTER_COLOR))):
                if emotion in probs:
                    h = (self.ROW - 8) / 2
                    p.fillRect(QRectF(bar_x, y + 2 + j * h, bar_w * probs[emotion], h - 1), color)
            values = [f"{probs[emotion]:.0%}" for probs in (self.before, self.after) if emotion in probs]
            font.setBold(False)
            small = QFont(font)
            small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
            p.setFont(small)
            p.drawText(QRectF(bar_x + bar_w + 4, y, self.VALUE_W, self.ROW - 4), Qt.AlignVCenter | Qt.AlignLeft,
                       "\n".join(values))
        p.end()

"""``cloak gui`` / ``cloak-gui``: start the desktop app, optionally opening a file."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from cloak.model import ModelError


def load_model():
    """``(model, None)`` or ``(None, reason)`` when the shipped checkpoint is missing or broken."""
    from cloak.model import load_recognizer

    try:
        return load_recognizer(), None
    except ModelError as e:
        return None, str(e)
    except (ImportError, OSError) as e:  # the cloak.models package itself is not installed
        return None, f"the shipped model is not installed ({e})"


def dispose(widget) -> None:
    """Close and delete a top-level widget through Qt while the application is alive.

    Letting Python's garbage collector delete the main window (or deleting it after the
    QApplication) aborts at exit with PySide6 6.12 ("shared QObject was deleted directly").
    """
    from PySide6.QtCore import QCoreApplication, QEvent

    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)


def main(argv: list[str] | None = None) -> int:
    """Run the app until its window closes; returns the exit status."""
    parser = argparse.ArgumentParser(prog="cloak-gui", description="Cloak the emotion in a voice recording.")
    parser.add_argument("file", nargs="?", help="audio file to open")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if sys.platform.startswith("linux") and not any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        print("cloak-gui: no display found (set DISPLAY, or QT_QPA_PLATFORM=offscreen to run headless)",
              file=sys.stderr)
        return 2

    from PySide6.QtWidgets import QApplication

    from .window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "cloak-gui"])
    app.setApplicationName("cloak")
    model, error = load_model()
    window = MainWindow(model, error)
    window.show()
    if args.file:
        window.open_file(args.file)
    status = int(app.exec())
    dispose(window)
    return status


if __name__ == "__main__":
    sys.exit(main())

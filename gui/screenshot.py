"""Regenerate ``docs/gui.png``: open a clip in the real window, cloak it, wait for the readout, grab the window.

    xvfb-run -s "-screen 0 1280x900x24" python -m cloak.gui.screenshot docs/gui.png [AUDIO] [--demo-devices]

Without AUDIO it uses a held-out EmoDB utterance (``find_emodb()``). The default mode is the
app's (thorough, at the preset's calm and attack strength); ``--mode subtle --strength high`` shows the
attack alone instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CLIP = "03a01Wa.wav"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="PNG to write")
    p.add_argument("audio", nargs="?", help="audio file (default: EmoDB 03a01Wa.wav)")
    p.add_argument("--mode", default=None, help="cloaking mode (default: the app's default)")
    p.add_argument("--calm", type=float, default=None, help="neutralizing modes: 0..1 (default: the app's)")
    p.add_argument("--strength", default=None, help="attack strength preset (default: the app's)")
    p.add_argument("--size", default="1200x860", help="window size WxH")
    p.add_argument("--demo-devices", action="store_true",
                   help="pretend to have a microphone and speakers (for docs made on a machine without sound)")
    args = p.parse_args(argv)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from cloak.emodb import find_emodb

    from .app import dispose, load_model
    from .window import MainWindow

    if args.demo_devices:
        from . import audio_device

        class _DemoSoundDevice:
            default = type("Default", (), {"device": (0, 1)})()

            @staticmethod
            def query_devices():
                return [{"name": "Built-in microphone", "max_input_channels": 1, "max_output_channels": 0,
                         "default_samplerate": 48000},
                        {"name": "Built-in speakers", "max_input_channels": 0, "max_output_channels": 2,
                         "default_samplerate": 48000}]

            @staticmethod
            def stop():
                pass

        audio_device._sounddevice = lambda: _DemoSoundDevice
    audio = args.audio
    if audio is None:
        root = find_emodb()
        if root is None:
            print("no AUDIO given and EmoDB not found", file=sys.stderr)
            return 2
        audio = str(root / "wav" / DEFAULT_CLIP)
    app = QApplication.instance() or QApplication(["cloak"])
    model, error = load_model()
    window = MainWindow(model, error)
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()

    def wait(signal, ms=120_000):
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    if not window.open_file(audio):
        print(window.banner.text(), file=sys.stderr)
        dispose(window)
        return 1
    if model is not None:
        wait(window.predicted)
        if args.mode:
            window.set_mode(args.mode, args.calm)
        elif args.calm is not None:
            window.set_mode(window.mode_combo.currentData(), args.calm)
        if args.strength:
            window.set_strength(args.strength)
        window.start_cloak()
        wait(window.readout_ended)  # the readout starts when the cloak ends
    wait(window.windowTitleChanged, 500)  # let the last paints happen
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(args.out)
    print(f"{args.out}: surrogate {window.emotion_before} -> {window.emotion_after}, "
          f"judge {window.judge_before} -> {window.judge_after}; {window.banner.text()}")
    dispose(window)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

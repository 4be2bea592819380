"""Desktop app for cloak (PySide6): open or record a voice, cloak it, compare, listen, save.

Layout: :mod:`.session` (pure, no Qt widgets: validate settings, load and save audio),
:mod:`.worker` (cloaking on a ``QThread``, signals only), :mod:`.audio_device` (the one
place that imports ``sounddevice``), :mod:`.widgets` and :mod:`.plots` (display only),
:mod:`.window` (wires them together) and :mod:`.app` (``main``).
"""

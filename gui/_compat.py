"""Work around a reference-counting bug of some PySide6 builds on CPython < 3.12.

Observed with PySide6 6.12.0 (abi3 wheel) on CPython 3.11: every Python call of a
void Qt method (``label.setText``, ``bar.setValue`` ...) drops one reference to ``None``
and every ``Signal.emit`` drops one to ``True``. From 3.12 on these singletons are
immortal (PEP 683), so the bug is invisible there; on 3.11 the app aborts with
``Fatal Python error: none_dealloc`` after a few thousand calls.

:func:`protect_singletons` detects the bug once and, only if present, gives ``None``,
``True`` and ``False`` a huge reference count, which is what 3.12 does for them anyway.
"""
from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

IMMORTAL_REFS = 1 << 40  # ~1e12 lost references: years of calls at thousands per second
_done = False


def _drops_references() -> bool:
    """Whether void calls or ``emit`` lose references to ``None`` / ``True``."""
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    n = 64
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(n):
        probe.setObjectName("probe")
    for _ in range(n):
        probe.ping.emit()
    return sys.getrefcount(None) < none_before - n // 2 or sys.getrefcount(True) < true_before - n // 2


def protect_singletons() -> bool:
    """Apply the workaround if this interpreter and PySide6 need it; returns whether it did."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    _done = True
    if not _drops_references():
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object (Py_ssize_t)
        ctypes.c_ssize_t.from_address(id(obj)).value += IMMORTAL_REFS
    log.info("PySide6 drops references to None/True on this Python; made them immortal")
    return True

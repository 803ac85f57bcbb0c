"""Ctrl-C during a run: the first press stops the run after the current tool, a second stops it at once."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FIRST_PRESS_NOTICE = b"\nStopping after the current tool finishes. Press Ctrl-C again to stop at once.\n"


class InterruptFlag:
    """Set by the first Ctrl-C; the loop checks it between tools. The second press raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False

    def press(self) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextmanager
def handle_interrupts(flag: InterruptFlag) -> Iterator[InterruptFlag]:
    """Route SIGINT to `flag` while the block runs, then restore the previous handler.

    Signal handlers can only be installed from the main thread. In another thread (an eval worker)
    the block runs with Python's default handler, so Ctrl-C raises KeyboardInterrupt at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum, frame) -> None:
        if not flag.requested:
            # A raw write: the handler may run while the screen is being drawn, so it stays out of the UI.
            os.write(2, FIRST_PRESS_NOTICE)
        flag.press()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)

"""A deadline on blocking calls, kept by one thread for many calls.

A `threading.Timer` per call costs a thread start each (about 0.1-0.5 ms), more than
git takes to hand over a small file; one watchdog per reader is armed and disarmed
under a lock instead.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class Watchdog:
    """`with watchdog:` runs its body under a deadline of `timeout` seconds; past it, `on_expire()` is called
    (from the watchdog's thread), which must make the blocked call return, for example by killing its process."""

    def __init__(self, timeout: float, on_expire: Callable[[], None]):
        self.timeout = timeout
        self._on_expire = on_expire
        self._deadline: float | None = None
        self._stopped = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._thread.start()

    def __enter__(self) -> Watchdog:
        with self._wake:
            self._deadline = time.monotonic() + self.timeout
            self._wake.notify()
        return self

    def __exit__(self, *exc) -> None:
        with self._wake:
            self._deadline = None

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join()

    def _watch(self) -> None:
        with self._wake:
            while not self._stopped:
                if self._deadline is None:
                    self._wake.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                self._deadline = None
                self._on_expire()

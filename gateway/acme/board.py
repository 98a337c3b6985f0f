"""The pending HTTP-01 challenges: written by the order (a worker thread), read by the
proxy (the event loop) on every request of the challenge window.

The mapping is replaced, never changed in place, so a reader always sees a whole one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType


class ChallengeBoard:
    """Token -> key authorization, for the tokens of the orders in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Mapping[str, str] = MappingProxyType({})

    @property
    def pending(self) -> Mapping[str, str]:
        return self._pending

    def any_pending(self) -> bool:
        return bool(self._pending)

    def add(self, token: str, key_authorization: str) -> None:
        with self._lock:
            self._pending = MappingProxyType({**self._pending, token: key_authorization})

    def remove(self, token: str) -> None:
        with self._lock:
            rest = {key: value for key, value in self._pending.items() if key != token}
            self._pending = MappingProxyType(rest)

    def clear(self) -> None:
        with self._lock:
            self._pending = MappingProxyType({})

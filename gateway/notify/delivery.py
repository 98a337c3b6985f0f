"""Delivery: notices in, messages out through Apprise, never on the event loop.

:meth:`Notifier.notify` only puts the notice into a bounded in-memory table and returns; a
worker thread sends. So a failing, slow or hanging receiver never slows proxying, and the
memory it can hold is bounded:

- **Folding.** The first notice of a kind (:attr:`Notice.fold_key`) is sent at once; more
  of the same kind within ``fold_period`` of a message wait and are sent as one message with
  their count when the period ends. A flood of 1,000 events of a kind is a handful of
  messages.
- **Bounded.** At most ``max_pending`` kinds wait at a time; a notice of a new kind beyond
  that is dropped (counted and logged once per minute).
- **Retries with backoff.** A message Apprise could not deliver to every receiver is tried
  again after each of :data:`BACKOFF` seconds, then given up (counted, logged, and the last
  failure shown on the dashboard). Notices of its kind that came meanwhile join it.

Receiver URLs appear only masked (:func:`gateway.notify.message.mask`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.notify.message import Message, Notice, compose, mask

logger = logging.getLogger("cemm_gateway.notify")

BACKOFF: tuple[float, ...] = (2.0, 10.0, 60.0)
FOLD_PERIOD = 30.0
MAX_PENDING = 100

Send = Callable[[Message], bool]


def apprise_sender(urls: Sequence[str], *, timeout: float = 10.0) -> Send:
    """Send through Apprise to every URL; True when every receiver took it. Apprise is
    loaded by the first send, on the delivery thread: its plugins take a while to import
    and the gateway starts serving meanwhile."""
    client: Any = None
    lock = threading.Lock()

    def send(message: Message) -> bool:
        nonlocal client
        with lock:
            if client is None:
                client = _apprise_client(urls, timeout)
        return bool(client.notify(title=message.title, body=message.body))

    return send


def _apprise_client(urls: Sequence[str], timeout: float) -> Any:
    # Imported here: its plugins load slowly, and only a gateway with receivers needs them.
    import apprise

    # Their debug lines carry whole URLs (tokens in paths and queries); never log them.
    for name in ("apprise", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    asset = apprise.AppriseAsset(async_mode=False)
    client = apprise.Apprise(asset=asset)
    for index, url in enumerate(urls, 1):
        if not client.add(url):
            logger.warning(
                "notification receiver %d (%s) is not a valid Apprise URL", index, mask(url)
            )
    for server in client:
        # Apprise's default read timeout is long; a hanging receiver holds only this thread.
        server.socket_connect_timeout = server.socket_read_timeout = timeout
    return client


@dataclass
class _Batch:
    first: Notice
    count: int
    last_at: float
    due: float
    attempts: int = 0


@dataclass(frozen=True)
class NotifyStatus:
    """What the dashboard shows about notifications."""

    receivers: tuple[str, ...]
    sent: int
    failed: int
    dropped: int
    pending: int
    last_failure: str | None
    last_failure_at: float | None


class Notifier:
    def __init__(
        self,
        send: Send,
        *,
        receivers: Iterable[str] = (),
        events: Iterable[str] | None = None,
        link: Callable[[str], str] = lambda path: path,
        language: Callable[[], str] = lambda: "en",
        fold_period: float = FOLD_PERIOD,
        backoff: Sequence[float] = BACKOFF,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._send = send
        self.receivers = tuple(mask(url) for url in receivers)
        self.events = frozenset(events) if events is not None else None
        self._link = link
        self._language = language  # the home's language, asked for each message
        self.fold_period = fold_period
        self.backoff = tuple(backoff)
        self.max_pending = max_pending
        self._pending: dict[str, _Batch] = {}
        self._quiet_until: dict[str, float] = {}  # kind -> end of its fold period
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.sent = self.failed = self.dropped = 0
        self.last_failure: str | None = None
        self.last_failure_at: float | None = None
        self._drop_logged_at = 0.0

    # -- in ----------------------------------------------------------------------------
    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events

    def notify(self, notice: Notice, *, always: bool = False) -> None:
        """Queue ``notice`` (from any thread; never blocks on delivery)."""
        if not always and not self.wants(notice.event):
            return
        now = time.monotonic()
        key = notice.fold_key
        with self._lock:
            batch = self._pending.get(key)
            if batch is not None:
                batch.count += 1
                batch.last_at = max(batch.last_at, notice.at)
                return
            if len(self._pending) >= self.max_pending:
                self._drop(notice, now)
                return
            due = max(now, self._quiet_until.get(key, 0.0))
            self._pending[key] = _Batch(notice, 1, notice.at, due)
            self._lock.notify()

    def _drop(self, notice: Notice, now: float) -> None:
        self.dropped += 1
        if now - self._drop_logged_at >= 60:
            self._drop_logged_at = now
            logger.warning(
                "notification of %s dropped: %d kinds already wait",
                notice.event,
                len(self._pending),
            )

    # -- out ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the worker; a send in progress (a hanging receiver) is not waited for
        longer than ``timeout``: the thread is a daemon, and stopping stays quick."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next(self) -> tuple[str, _Batch] | None:
        """The batch due first, once it is due; None when stopping."""
        with self._lock:
            while not self._stopping:
                now = time.monotonic()
                due = min(self._pending.items(), key=lambda kv: kv[1].due, default=None)
                if due is not None and due[1].due <= now:
                    del self._pending[due[0]]
                    return due
                self._lock.wait(None if due is None else due[1].due - now)
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            key, batch = item
            message = compose(
                batch.first,
                count=batch.count,
                last_at=batch.last_at,
                link=self._link,
                language=self._language(),
            )
            try:
                ok = self._send(message)
                error = "a receiver did not accept the message"
            except Exception as failure:  # a plugin's bug must not end the worker
                ok, error = False, f"{type(failure).__name__}"
            self._done(key, batch, ok, error)

    def _done(self, key: str, batch: _Batch, ok: bool, error: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._quiet_until) >= 4 * self.max_pending:
                self._quiet_until = {k: t for k, t in self._quiet_until.items() if t > now}
            self._quiet_until[key] = now + self.fold_period
            if ok:
                self.sent += 1
                return
            self.last_failure = f"{batch.first.event}: {error}"
            self.last_failure_at = time.time()
            if batch.attempts < len(self.backoff):
                retry = _Batch(
                    batch.first,
                    batch.count,
                    batch.last_at,
                    now + self.backoff[batch.attempts],
                    batch.attempts + 1,
                )
                waiting = self._pending.pop(key, None)
                if waiting is not None:
                    retry.count += waiting.count
                    retry.last_at = max(retry.last_at, waiting.last_at)
                self._pending[key] = retry
                wait = self.backoff[batch.attempts]
            else:
                wait = None
                self.failed += 1
        if wait is not None:
            logger.warning(
                "notification of %s not delivered to %s (%s); trying again in %g s",
                batch.first.event,
                ", ".join(self.receivers),
                error,
                wait,
            )
            return
        logger.warning(
            "notification of %s (%d event(s)) not delivered after %d attempts to %s: %s",
            batch.first.event,
            batch.count,
            batch.attempts + 1,
            ", ".join(self.receivers),
            error,
        )

    def status(self) -> NotifyStatus:
        with self._lock:
            return NotifyStatus(
                receivers=self.receivers,
                sent=self.sent,
                failed=self.failed,
                dropped=self.dropped,
                pending=sum(batch.count for batch in self._pending.values()),
                last_failure=self.last_failure,
                last_failure_at=self.last_failure_at,
            )

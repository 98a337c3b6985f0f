"""The audit log's CSV export (gateway/services/audit_export.py, served by
gateway/admin/api/audit.py): every matching entry, read a batch at
a time, none lost or repeated where a batch ends among entries of the very same time; and
the download complete or an error, never a shorter file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.admin.api import audit as audit_api
from gateway.clock import ManualClock
from gateway.services import audit, audit_export
from gateway.services.audit_export import AuditQuery, csv_chunks
from gateway.store import db
from gateway.store.worker import DbWorker

# Times of the entries, oldest first: runs of equal times that straddle batches of 3.
TIMES = [100.0, 101.0, 101.0, 101.0, 101.0, 102.0, 103.0, 103.0, 104.0, 105.0, 105.0, 105.0]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[DbWorker]:
    path = tmp_path / "gateway.db"
    conn = db.connect(path)
    for number, at in enumerate(TIMES):
        event = "user.add" if number % 2 else "allowlist.add"
        audit.record(conn, "admin", event, clock=ManualClock(at), number=number)
    conn.commit()
    conn.close()
    running = DbWorker(path)
    yield running
    running.close()


def _export(worker: DbWorker, **options: object) -> list[dict[str, str]]:
    filters = {"user": None, "event": None, "since": None, "until": None, **options}

    async def collect() -> str:
        return "".join([chunk async for chunk in csv_chunks(worker, **filters)])

    text = asyncio.run(collect())
    assert text.startswith(audit.as_csv([]))  # the header, once
    return list(csv.DictReader(io.StringIO(text)))


def _numbers(rows: list[dict[str, str]]) -> list[int]:
    return [json.loads(row["detail"])["number"] for row in rows]


@pytest.mark.parametrize("batch", [1, 2, 3, 4, 5, 12, 13, 1000])
def test_every_entry_once_newest_first_whatever_the_batch(worker: DbWorker, batch: int) -> None:
    rows = _export(worker, batch=batch)
    assert _numbers(rows) == list(range(len(TIMES)))[::-1]


@pytest.mark.parametrize("batch", [2, 3, 1000])
def test_filters_and_a_limit_hold_across_batches(worker: DbWorker, batch: int) -> None:
    users = _export(worker, event="user", batch=batch)
    assert _numbers(users) == [11, 9, 7, 5, 3, 1]
    assert (
        _numbers(_export(worker, since=101.0, until=105.0, batch=batch)) == list(range(1, 9))[::-1]
    )
    assert _numbers(_export(worker, most=4, batch=batch)) == [11, 10, 9, 8]
    assert _numbers(_export(worker, most=100, batch=batch)) == list(range(len(TIMES)))[::-1]


def test_nothing_matching_is_the_header_alone(worker: DbWorker) -> None:
    assert _export(worker, event="ban", batch=3) == []


class _FailingAfter:
    """A database worker whose ``calls``-th call fails, as a full or broken disk would."""

    def __init__(self, worker: DbWorker, calls: int) -> None:
        self.worker, self.left = worker, calls

    async def run(self, function, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.left -= 1
        if self.left <= 0:
            raise sqlite3.OperationalError("disk I/O error")
        return await self.worker.run(function, *args, **kwargs)


def _download(db: object, data_dir: Path, **query: object) -> tuple[dict[str, str], bytes]:
    context = SimpleNamespace(db=db, settings=SimpleNamespace(data_dir=data_dir))

    async def fetch() -> tuple[dict[str, str], bytes]:
        response = await audit_api.audit_export(
            AuditQuery(**query),  # type: ignore[arg-type]
            caller=None,  # type: ignore[arg-type]
            context=context,  # type: ignore[arg-type]
            limit=None,
        )
        body = b"".join([block async for block in response.body_iterator])  # type: ignore[attr-defined]
        return dict(response.headers), body

    return asyncio.run(fetch())


def test_the_download_is_complete_and_says_its_size(
    worker: DbWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_export, "EXPORT_BATCH", 5)
    monkeypatch.setattr(audit_export, "EXPORT_IN_MEMORY", 100)  # spills to a file in the data dir
    monkeypatch.setattr(audit_export, "EXPORT_READ_SIZE", 64)
    spill = tmp_path / "data"
    spill.mkdir()
    headers, body = _download(worker, spill, event="user")
    assert int(headers["content-length"]) == len(body)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert _numbers(rows) == [11, 9, 7, 5, 3, 1]
    assert list(spill.iterdir()) == []  # the file it spilled to is gone


def test_a_failure_while_reading_is_an_error_not_a_shorter_file(
    worker: DbWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_export, "EXPORT_BATCH", 3)
    with pytest.raises(sqlite3.OperationalError):  # the app answers 503 before any byte
        _download(_FailingAfter(worker, calls=4), tmp_path)

"""Times on the pages say their zone (the gateway's TZ)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gateway.admin import rendering
from gateway.portal import pages
from gateway.web.times import when

MOMENT = 1_796_547_600.0  # 2026-12-06 09:00 UTC


@pytest.fixture
def amsterdam(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_time_carries_the_zone_of_the_gateway(amsterdam: None) -> None:
    assert when(MOMENT) == "2026-12-06 10:00 CET"
    assert when(MOMENT + 180 * 86400) == "2027-06-04 11:00 CEST"
    assert when(MOMENT, seconds=True) == "2026-12-06 10:00:00 CET"


def test_nothing_and_the_unrepresentable() -> None:
    assert when(None) == "-"
    assert when(1e300) == "far in the future"
    assert when(-1e300) == "long ago"


def test_the_admin_app_and_the_portal_render_times_with_the_zone(amsterdam: None) -> None:
    for loader in (rendering.templates, pages.templates):
        shown = loader.env.from_string("{{ t|when }}").render(t=MOMENT)
        assert shown == "2026-12-06 10:00 CET"

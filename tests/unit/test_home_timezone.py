"""The home's time zone: ``[ui] timezone``, else ``TZ``, else Europe/Amsterdam."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from gateway.settings.ui import UiSettings
from gateway.web import times
from gateway.web.times import use_timezone, when

MOMENT = 1_796_547_600.0  # 2026-12-06 09:00 UTC


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield
    use_timezone("")
    monkeypatch.undo()
    time.tzset()


def test_without_tz_the_home_is_amsterdam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TZ", raising=False)
    assert when(MOMENT) == "2026-12-06 10:00 CET"


def test_tz_names_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    assert when(MOMENT) == "2026-12-06 09:00 UTC"
    monkeypatch.setenv("TZ", ":Europe/London")
    assert when(MOMENT) == "2026-12-06 09:00 GMT"


def test_a_posix_tz_goes_through_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    assert times.home_zone() is None
    assert when(MOMENT) == "2026-12-06 04:00 EST"


def test_the_setting_wins_over_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    use_timezone("America/New_York")
    assert when(MOMENT) == "2026-12-06 04:00 EST"


def test_the_setting_must_be_a_known_zone() -> None:
    assert UiSettings(timezone="Europe/Amsterdam").timezone == "Europe/Amsterdam"
    assert UiSettings().timezone == ""
    with pytest.raises(ValidationError, match="not a time zone"):
        UiSettings(timezone="Mars/Olympus_Mons")

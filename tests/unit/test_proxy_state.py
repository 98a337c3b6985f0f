"""ProxyState: readers get immutable snapshots, every write is a method of the one owner,
and a login or logout changes one session without a re-read."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.policy.credentials import AuthSnapshot, SessionInfo
from gateway.proxy.state import PortStatus
from tests.support.proxy_state import proxy_state


def _session(session_id: str, user: str = "anna") -> SessionInfo:
    return SessionInfo(
        id=session_id,
        user_id=1,
        user_name=user,
        role="admin",
        csrf_token="csrf",
        created_at=1.0,
        last_seen_at=1.0,
        expires_at=9e9,
        client_address=None,
        user_agent=None,
    )


def test_readers_cannot_write_through_what_they_read() -> None:
    state = proxy_state()
    with pytest.raises(TypeError):
        state.denials["not_allowlisted"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        state.session_activity["s1"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        state.listeners["x"] = None  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.upstream.host = ""  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.limits.idle_timeout = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        state.policy = state.policy  # type: ignore[misc]


def test_counters_are_counted_through_the_owner() -> None:
    state = proxy_state()
    assert state.denials["not_allowlisted"] == 0
    state.count_denial("not_allowlisted")
    state.count_denial("not_allowlisted")
    state.count_request("admitted")
    assert dict(state.denials) == {"not_allowlisted": 2}
    assert dict(state.requests) == {"admitted": 1}


def test_a_login_and_a_logout_change_one_session() -> None:
    state = proxy_state()
    state.set_auth(AuthSnapshot(sessions={"h1": _session("s1")}, generation=4))
    before = state.auth
    state.add_session("h2", _session("s2", "bob"))
    assert set(state.auth.sessions) == {"h1", "h2"}
    assert state.auth.generation == 4  # not a re-read
    assert set(before.sessions) == {"h1"}  # a snapshot already handed out stays as it was
    state.remove_sessions({"s1"})
    assert set(state.auth.sessions) == {"h2"}
    unchanged = state.auth
    state.remove_sessions({"gone"})
    assert state.auth is unchanged


def test_activity_taken_for_writing_and_kept_when_the_write_fails() -> None:
    state = proxy_state()
    state.touch_session("s1", 10.0)
    state.touch_token("t1", 11.0)
    sessions, tokens = state.take_activity()
    assert (sessions, tokens) == ({"s1": 10.0}, {"t1": 11.0})
    assert dict(state.session_activity) == {}
    state.touch_session("s1", 12.0)  # counted while the write ran
    state.keep_activity(sessions, tokens)
    assert dict(state.session_activity) == {"s1": 12.0}
    assert dict(state.token_activity) == {"t1": 11.0}


def test_the_upstream_is_re_pointed_by_replacing_the_target() -> None:
    state = proxy_state(host="192.168.2.34", mac="02:00:00:00:00:01")
    before = state.upstream
    state.set_upstream_host("")
    assert state.upstream.host == "" and before.host == "192.168.2.34"
    state.set_upstream_mac("")
    assert state.upstream.mac == ""


def test_port_status_keeps_the_first_failure_until_a_success() -> None:
    state = proxy_state()
    state.port_failed(80, 5.0)
    state.port_failed(80, 6.0)
    assert state.status.ports[80].failing_since == 5.0
    state.port_ok(80, 7.0)
    assert state.status.ports[80] == PortStatus(last_ok=7.0, failing_since=None)
    state.forget_ports()
    assert dict(state.status.ports) == {}

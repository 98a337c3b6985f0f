"""Guest links end to end: the CLI makes one, a browser opens it, the proxy admits the
guest's session until the link ends, and then closes the guest's WebSockets.

Shown here: the first use creates the session (and the audit events ``guest.first_use``
and ``guest.login``, with the guest's name and address); a second browser with the same
link (``--browsers 1``) is refused; revoking or expiry closes a live WebSocket within 2 s
(measured from the revoke's commit, or from the deadline); a viewer guest cannot write;
the link's token never appears in the gateway's log; an address the allowlist does not
admit gets nothing from the link.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.admin import ADMIN, ADMIN_PASSWORD, logged_in
from tests.support.gateway import (
    GatewayConfig,
    GatewayProcess,
    SimulatorThread,
    changed_at,
    cli,
    token_in_force,
)


@dataclass
class Env:
    config: GatewayConfig
    gateway: GatewayProcess
    simulator: SimulatorThread


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("guests"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        # 127.0.0.1 may connect; 127.0.0.2 (another "address") may not.
        extra='[allowlist]\ndefault_networks = ["127.0.0.1/32"]\n'
        f'[auth]\ninitial_admin = "{ADMIN}"\ninitial_admin_password = "{ADMIN_PASSWORD}"\n'
        # Loopback is counted by the gate here, so a wrong link shows as a failure.
        "[auth.bruteforce]\nnever_ban = []\n",
    )
    gateway = GatewayProcess(config)
    try:
        yield Env(config, gateway, simulator)
    finally:
        gateway.close()
        simulator.close()


def add_link(config: GatewayConfig, *options: str) -> tuple[str, int]:
    """A new guest link: (its path, its id)."""
    made = cli("guest", "add", "installer Jan", *options, config=config.path)
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    path = urlsplit(url).path
    assert path.startswith("/.gateway/guest/") and len(path.rsplit("/", 1)[1]) >= 43
    link_id = int(made.stderr.split("guest link ")[1].split()[0])
    return path, link_id


def open_link(config: GatewayConfig, path: str, name: str = "Jan") -> httpx.Response:
    """What a browser does: open the page, send the name with the form's token."""
    with httpx.Client(base_url=config.url("/"), timeout=10) as browser:
        page = browser.get(path)
        if page.status_code != 200:
            return page
        assert 'name="guest_name"' in page.text
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        return browser.post(path, data={"guest_name": name, "csrf_token": csrf})


def cookie_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:300]
    return response.cookies["cemm_session"]


def test_first_use_creates_the_session_and_a_second_browser_is_refused(env: Env) -> None:
    config = env.config
    path, link_id = add_link(config, "--role", "viewer", "--expires", "8h")
    session = cookie_of(open_link(config, path))
    seen = httpx.get(config.url("/_sim/headers"), cookies={"cemm_session": session}, timeout=5)
    assert seen.status_code == 200
    # A viewer guest only looks.
    write = httpx.post(
        config.url("/_sim/echo"),
        cookies={"cemm_session": session},
        headers={"Origin": config.url("/").rstrip("/")},
        timeout=5,
    )
    assert write.status_code == 403
    # The second browser: the page still opens (the link is valid), the session does not.
    refused = open_link(config, path, name="someone else")
    assert refused.status_code == 403
    assert "cemm_session" not in refused.cookies
    listed = json.loads(cli("guest", "list", "--json", config=config.path).stdout)
    (link,) = [item for item in listed if item["id"] == link_id]
    assert (link["sessions"], link["first_used_from"], link["state"]) == (1, "127.0.0.1", "active")
    with sqlite3.connect(config.data_dir / "gateway.db") as db:
        events = db.execute(
            "SELECT actor, event, client_address, detail FROM audit_log"
            " WHERE event LIKE 'guest.%' ORDER BY id"
        ).fetchall()
    first = [e for e in events if e[1] == "guest.first_use"]
    assert len(first) == 1 and first[0][0] == "guest:Jan" and first[0][2] == "127.0.0.1"
    assert json.loads(first[0][3])["guest_link"] == str(link_id)
    sessions = json.loads(cli("session", "list", "--json", config=config.path).stdout)
    assert any(s.get("user_name") == "guest:Jan" for s in sessions), sessions
    # The link's secret never reaches the log.
    assert path.rsplit("/", 1)[1] not in env.gateway.log()


def _watch_close(ws: ClientConnection) -> tuple[threading.Event, list[float]]:
    closed, at = threading.Event(), []

    def run() -> None:
        try:
            while True:
                ws.recv(timeout=60)
        except (ConnectionClosed, TimeoutError):
            at.append(time.time())
            closed.set()

    threading.Thread(target=run, daemon=True).start()
    return closed, at


@pytest.mark.parametrize("how", ["revoke", "expire"])
def test_ending_a_link_closes_the_guests_websocket_within_two_seconds(env: Env, how: str) -> None:
    config = env.config
    expires = "8s" if how == "expire" else "1h"
    path, link_id = add_link(config, "--role", "user", "--expires", expires)
    session = cookie_of(open_link(config, path))
    listed = json.loads(cli("guest", "list", "--json", config=config.path).stdout)
    (expires_at,) = [item["expires_at"] for item in listed if item["id"] == link_id]
    origin = config.url("/").rstrip("/")
    headers = {"Cookie": f"cemm_session={session}"}
    with (
        connect(config.ws_url("/ws"), origin=origin, additional_headers=headers) as ws_port,
        connect(
            config.ws_url("/ws", port="http"), origin=origin, additional_headers=headers
        ) as web,
    ):
        assert '"reading"' in ws_port.recv(timeout=3)
        web.recv(timeout=3)
        assert how == "revoke" or time.time() < expires_at, "the machine is too slow: retry"
        watched = [_watch_close(ws_port), _watch_close(web)]
        if how == "revoke":
            done = cli("guest", "revoke", str(link_id), config=config.path)
            assert done.returncode == 0, done.stderr
            ended_at = changed_at(config.data_dir, "guest.revoke")
        else:
            ended_at = expires_at
        assert all(closed.wait(15) for closed, _ in watched), "a socket stayed open"
    delays = [at[0] - ended_at for _, at in watched]
    print(f"{how}: guest sockets closed {[round(d, 3) for d in delays]} s after the end")
    assert min(delays) > -0.5, "closed before the link ended"
    assert max(delays) < 2.0
    gone = httpx.get(config.url("/_sim/headers"), cookies={"cemm_session": session}, timeout=5)
    assert gone.status_code == 401
    assert open_link(config, path).status_code == 404


def test_a_link_from_outside_the_allowlist_gets_nothing(env: Env) -> None:
    config = env.config
    path, link_id = add_link(config, "--expires", "1h")
    outside = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)
    with outside:
        try:
            answer = outside.get(config.url(path))
        except httpx.TransportError:
            answer = None
    assert answer is None or (answer.status_code >= 400 and "guest_name" not in answer.text)
    listed = json.loads(cli("guest", "list", "--json", config=config.path).stdout)
    (link,) = [item for item in listed if item["id"] == link_id]
    assert link["first_used_at"] is None and link["sessions"] == 0


def test_an_unknown_link_is_a_failed_guess(env: Env) -> None:
    config = env.config

    def failures() -> int:
        with sqlite3.connect(config.data_dir / "gateway.db") as db:
            return int(db.execute("SELECT count(*) FROM login_failure").fetchone()[0])

    before = failures()
    answer = httpx.get(config.url("/.gateway/guest/" + "x" * 43), timeout=10)
    assert answer.status_code == 404
    assert "guest_name" not in answer.text
    # Counted by the one gate, like a wrong password.
    assert failures() > before


def test_the_admin_api_makes_lists_and_revokes_links(env: Env) -> None:
    config = env.config
    with logged_in(config.url("/", port="admin")) as admin:
        made = admin.post(
            "/api/guests", json={"name": "installer Piet", "expires": "2h", "browsers": 2}
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert "/.gateway/guest/" in body["url"] and body["record"]["browsers"] == 2
        link_id = body["record"]["id"]
        listed = admin.get("/api/guests").json()
        assert any(item["id"] == link_id and item["state"] == "active" for item in listed)
        assert "url" not in json.dumps(listed)  # the link itself is answered once only
        bad = admin.post("/api/guests", json={"name": "x", "expires": "yesterday"})
        assert bad.status_code == 400
        assert admin.delete(f"/api/guests/{link_id}").status_code == 204
        assert admin.delete(f"/api/guests/{link_id}").status_code == 409
        page = admin.get("/guests")
        assert page.status_code == 200 and f'id="guest-{link_id}"' in page.text
        # The guest of the first test appears as a guest in sessions and on the dashboard.
        listed_sessions = admin.get("/api/sessions").json()
        assert any(s["user"] == "guest:Jan" for s in listed_sessions), listed_sessions
        for path in ("/sessions", "/"):
            shown = admin.get(path)
            assert shown.status_code == 200 and "guest:Jan" in shown.text, path


def test_a_guest_has_no_account_page_and_can_log_out(env: Env) -> None:
    config = env.config
    path, _ = add_link(config, "--expires", "1h")
    session = cookie_of(open_link(config, path))
    cookies = {"cemm_session": session}
    assert httpx.get(config.url("/.gateway/account"), cookies=cookies, timeout=5).status_code == 403
    # The admin app is for admins only.
    admin = httpx.get(config.url("/api/me", port="admin"), cookies=cookies, timeout=5)
    assert admin.status_code == 403
    out = httpx.post(
        config.url("/.gateway/logout"),
        cookies=cookies,
        headers={"Origin": config.url("/").rstrip("/")},
        timeout=5,
    )
    assert out.status_code == 200
    gone = httpx.get(config.url("/_sim/headers"), cookies=cookies, timeout=5)
    assert gone.status_code == 401


def test_a_viewer_account_never_reaches_the_admin_app(env: Env) -> None:
    config = env.config
    made = cli(
        "user",
        "add",
        "vera",
        "--role",
        "viewer",
        "--password-stdin",
        input="a long password 12\n",
        config=config.path,
    )
    assert made.returncode == 0, made.stderr
    with logged_in(config.url("/", port="admin"), "vera", "a long password 12") as viewer:
        for path in ("/api/me", "/api/guests", "/guests", "/users"):
            assert viewer.get(path).status_code == 403, path
        assert viewer.post("/api/guests", json={"name": "x", "expires": "1h"}).status_code == 403


def test_a_scoped_admin_token_gets_nothing_from_the_admin_app(env: Env) -> None:
    config = env.config
    made = cli("token", "add", ADMIN, "--name", "scoped", "--scope", "/_sim/", config=config.path)
    assert made.returncode == 0, made.stderr
    token_in_force(config, made.stdout.strip())  # the CLI's change, at the next reload
    bearer = {"Authorization": f"Bearer {made.stdout.strip()}"}
    answer = httpx.get(config.url("/api/me", port="admin"), headers=bearer, timeout=5)
    assert (answer.status_code, answer.json()["error"]) == (403, "scoped_token")
    # On the CEMM's ports its scope admits what it names.
    assert httpx.get(config.url("/_sim/headers"), headers=bearer, timeout=5).status_code == 200


def _login_form_token(browser: httpx.Client) -> str:
    """The double-submit token a portal form carries (the login page sets its cookie)."""
    page = browser.get("/.gateway/login")
    return page.text.split('name="csrf_token" value="')[1].split('"')[0]


def test_an_invalid_name_tells_nothing_about_the_token_before_the_gate(env: Env) -> None:
    """The name is checked inside the guess: a wrong token with an empty name is a failure
    of the gate, and a banned address gets 429 for a live and a wrong token alike."""
    config = env.config
    live, _ = add_link(config, "--expires", "1h")
    wrong = "/.gateway/guest/" + "y" * 43
    db_path = config.data_dir / "gateway.db"
    with sqlite3.connect(db_path) as db:
        first_failure = int(
            db.execute("SELECT coalesce(max(id), 0) FROM login_failure").fetchone()[0]
        )
    ban_id = None
    try:
        with httpx.Client(base_url=config.url("/"), timeout=20) as browser:
            csrf = _login_form_token(browser)
            answer = browser.post(wrong, data={"guest_name": "", "csrf_token": csrf})
            assert answer.status_code == 404
            with sqlite3.connect(db_path) as db:
                counted = db.execute(
                    "SELECT count(*) FROM login_failure WHERE id > ?", (first_failure,)
                ).fetchone()[0]
            assert counted >= 1
            # After the gate admits, a live link shows its form again (as its page would).
            again = browser.post(live, data={"guest_name": "", "csrf_token": csrf})
            assert again.status_code == 400 and 'name="guest_name"' in again.text
            with sqlite3.connect(db_path) as db:
                ban_id = db.execute(
                    "INSERT INTO ban (subject, reason, created_at, until)"
                    " VALUES ('address:127.0.0.1', 'test', ?, ?)",
                    (time.time(), time.time() + 600),
                ).lastrowid
            answers = [
                browser.post(path, data={"guest_name": "", "csrf_token": csrf})
                for path in (live, wrong)
            ]
            assert [a.status_code for a in answers] == [429, 429]
            assert answers[0].text == answers[1].text
    finally:
        with sqlite3.connect(db_path) as db:
            if ban_id is not None:
                db.execute("DELETE FROM ban WHERE id = ?", (ban_id,))
            # Leave the address's count as it was for the tests after this one.
            db.execute("DELETE FROM login_failure WHERE id > ?", (first_failure,))

"""Passkeys through a running gateway, with a software authenticator signing real
assertions: register on the account page, log in with the passkey alone and as the second
step after a password, and the refusals - another relying party, a replay, a counter that
went backwards (audited as a cloned key), a banned account, a removed passkey, an address
that cannot have passkeys. One gateway for the module; each test its own account and its
own loopback address, so the bans one test causes never touch another."""

from __future__ import annotations

import html
import itertools
import json
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway import i18n
from tests.support.admin import form_token, logged_in
from tests.support.authenticator import SoftAuthenticator
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli

PASSWORD = "correct-horse-battery-staple"
USER_PASSWORD = "a-user-password-123"
BAN_AFTER = 3
_addresses = itertools.count(40)
RUNNING: list[GatewayProcess] = []  # the module's gateway (a test restarts it)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("passkeys"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=(
            f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
            'public_hostnames = ["localhost"]\n'
            "[auth.bruteforce]\n"
            f"never_ban = []\nfree_attempts = 1000\nban_after = {BAN_AFTER}\nban_duration = 900\n"
        ),
    )
    RUNNING.append(GatewayProcess(config))
    try:
        yield config
    finally:
        RUNNING.pop().close()
        simulator.close()


def _client() -> httpx.Client:
    """A browser of its own, from a loopback address no other test uses."""
    source = f"127.0.0.{next(_addresses)}"
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=15)


def _url(config: GatewayConfig, path: str) -> str:
    return config.url(path, host="localhost")


def _origin(config: GatewayConfig) -> str:
    return f"http://localhost:{config.http_port}"


def _new_user(config: GatewayConfig, name: str) -> None:
    result = cli(
        "user", "add", name, "--role", "user", "--password-stdin",
        config=config.path, input=USER_PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _password_login(client: httpx.Client, config: GatewayConfig, name: str) -> str:
    """A session by the JSON login (an account without a second factor); its CSRF token."""
    answer = client.post(
        _url(config, "/.gateway/api/login"), json={"username": name, "password": USER_PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf_token"])


def _enrol(client: httpx.Client, config: GatewayConfig, key: SoftAuthenticator) -> None:
    csrf = _password_login(client, config, client.headers.get("x-user", ""))
    options = client.post(
        _url(config, "/.gateway/account/passkeys/options"), json={"csrf_token": csrf}
    )
    assert options.status_code == 200, options.text
    answer = key.create(options.json()["options"], _origin(config))
    made = client.post(
        _url(config, "/.gateway/account/passkeys"),
        json={"csrf_token": csrf, "name": "phone", "credential": answer},
    )
    assert made.status_code == 200, made.text


def _account(config: GatewayConfig, name: str, key: SoftAuthenticator) -> None:
    """A new account with one passkey on ``key``, made through the account page."""
    _new_user(config, name)
    with _client() as client:
        client.headers["x-user"] = name
        _enrol(client, config, key)


def _login_csrf(client: httpx.Client, config: GatewayConfig) -> str:
    page = client.get(_url(config, "/.gateway/login"))
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _passkey_login(
    client: httpx.Client,
    config: GatewayConfig,
    key: SoftAuthenticator,
    *,
    challenge: str = "",
    csrf: str | None = None,
    answer: dict[str, Any] | None = None,
    **signing: Any,
) -> tuple[httpx.Response, dict[str, Any]]:
    """One passkey login (alone, or the second step ``challenge``): the gateway's last
    answer and the authenticator's answer (to replay)."""
    csrf = csrf or _login_csrf(client, config)
    start = client.post(
        _url(config, "/.gateway/login/passkey/options"),
        json={"csrf_token": csrf, "challenge": challenge},
    )
    assert start.status_code == 200, start.text
    answer = answer or key.get(start.json()["options"], _origin(config), **signing)
    done = client.post(
        _url(config, "/.gateway/login/passkey"),
        json={
            "csrf_token": csrf,
            "ticket": start.json()["ticket"],
            "credential": answer,
            "next": "/app",
            "challenge": challenge,
        },
    )
    return done, answer


def _events(config: GatewayConfig, event: str) -> list[dict[str, Any]]:
    with sqlite3.connect(config.data_dir / "gateway.db") as db:
        rows = db.execute(
            "SELECT actor, detail FROM audit_log WHERE event = ? ORDER BY id", (event,)
        ).fetchall()
    return [{"actor": actor, **json.loads(detail)} for actor, detail in rows]


def test_register_then_log_in_with_the_passkey_alone(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "alma", key)
    assert [e["rp_id"] for e in _events(config, "passkey.registered") if e["user"] == "alma"] == [
        "localhost"
    ]
    with _client() as client:
        assert client.get(_url(config, "/api/v1/public/cemm")).status_code in (302, 303, 401)
        done, _ = _passkey_login(client, config, key)
        assert done.status_code == 200, done.text
        assert done.json() == {"next": "/app"}
        assert client.get(_url(config, "/api/v1/public/cemm")).status_code == 200
        page = client.get(_url(config, "/.gateway/account"))
        assert "phone" in page.text and "localhost" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
    assert any(e["actor"] == "alma" for e in _events(config, "passkey.used"))


def test_a_replayed_assertion_is_refused(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "bo", key)
    with _client() as client:
        done, answer = _passkey_login(client, config, key)
        assert done.status_code == 200
    with _client() as thief:
        replayed, _ = _passkey_login(thief, config, key, answer=answer)
        assert replayed.status_code == 401
        assert thief.get(_url(config, "/api/v1/public/cemm")).status_code != 200


def test_an_assertion_for_another_relying_party_is_refused(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "cas", key)
    with _client() as client:
        done, _ = _passkey_login(client, config, key, rp_id="evil.example")
        assert done.status_code == 401
        # A page under a name that is not the gateway's gets no passkey options at all.
        csrf = _login_csrf(client, config)
        refused = client.post(
            _url(config, "/.gateway/login/passkey/options"),
            json={"csrf_token": csrf},
            headers={"host": f"evil.example:{config.http_port}"},
        )
        assert refused.status_code in (403, 409), refused.text


def test_a_counter_regression_is_refused_and_audited_as_a_cloned_key(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "dex", key)
    with _client() as client:
        for _ in range(2):
            assert _passkey_login(client, config, key)[0].status_code == 200
            client.cookies.clear()  # logged out
        clone, _ = _passkey_login(client, config, key, sign_count=1)
        assert clone.status_code == 401
    (cloned,) = [e for e in _events(config, "passkey.cloned") if e["user"] == "dex"]
    assert (cloned["stored_count"], cloned["reported_count"]) == (2, 1)


def test_a_banned_account_cannot_log_in_with_its_passkey(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "eli", key)
    with _client() as stranger:
        for _ in range(BAN_AFTER):
            wrong = stranger.post(
                _url(config, "/.gateway/api/login"),
                json={"username": "eli", "password": "wrong-password-xyz"},
            )
            assert wrong.status_code == 401
    with _client() as client:
        done, _ = _passkey_login(client, config, key)
        assert done.status_code == 429
        assert int(done.headers["retry-after"]) > 0
    cli("bans", "lift", "user:eli", config=config.path)


def test_password_then_passkey_and_remove_it(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "fay", key)
    with _client() as client:
        # The JSON login cannot do a passkey: a second factor is required.
        json_login = client.post(
            _url(config, "/.gateway/api/login"),
            json={"username": "fay", "password": USER_PASSWORD},
        )
        assert json_login.status_code == 401
        csrf = _login_csrf(client, config)
        step = client.post(
            _url(config, "/.gateway/login"),
            data={"username": "fay", "password": USER_PASSWORD, "csrf_token": csrf, "next": "/x"},
        )
        assert step.status_code == 200 and "Use a passkey" in step.text
        assert 'name="code"' not in step.text  # no TOTP on this account
        challenge = re.search(r'data-challenge="([^"]+)"', step.text).group(1)  # type: ignore[union-attr]
        csrf = re.search(r'data-csrf="([^"]+)"', step.text).group(1)  # type: ignore[union-attr]
        done, _ = _passkey_login(client, config, key, challenge=challenge, csrf=csrf)
        assert done.status_code == 200, done.text
        assert done.json() == {"next": "/x"}
        assert client.get(_url(config, "/api/v1/public/cemm")).status_code == 200
        logins = [
            e for e in _events(config, "login") if e["actor"] == "fay" or e.get("user") == "fay"
        ]
        assert logins and logins[-1].get("method") == "password+passkey"
        # Remove it on the account page (the passkey login was a fresh proof).
        page = client.get(_url(config, "/.gateway/account"))
        session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        passkey_id = re.search(r"/.gateway/account/passkeys/(\d+)/remove", page.text).group(1)  # type: ignore[union-attr]
        removed = client.post(
            _url(config, f"/.gateway/account/passkeys/{passkey_id}/remove"),
            data={"csrf_token": session_csrf},
        )
        assert removed.status_code == 200 and "removed" in removed.text
        # Once more: it is gone, and the account page says so in the reader's language.
        again = client.post(
            _url(config, f"/.gateway/account/passkeys/{passkey_id}/remove"),
            data={"csrf_token": session_csrf},
            headers={"Accept-Language": "nl"},
        )
        gone = i18n.translations("nl").gettext("There is no such passkey on your account.")
        assert again.status_code == 400 and gone in html.unescape(again.text), again.text
    with _client() as client:
        done, _ = _passkey_login(client, config, key)
        assert done.status_code == 401
    assert any(e["user"] == "fay" for e in _events(config, "passkey.removed"))


def test_an_address_that_cannot_have_passkeys_says_why(env: GatewayConfig) -> None:
    config = env
    _new_user(config, "gus")
    with _client() as client:
        answer = client.post(
            config.url("/.gateway/api/login"), json={"username": "gus", "password": USER_PASSWORD}
        )
        csrf = answer.json()["csrf_token"]
        page = client.get(config.url("/.gateway/account"))
        assert "IP address" in page.text and "Add a passkey" not in page.text
        refused = client.post(
            config.url("/.gateway/account/passkeys/options"), json={"csrf_token": csrf}
        )
        assert refused.status_code == 409 and refused.json()["error"] == "passkeys_unavailable"


def test_the_admin_app_lists_and_removes_a_users_passkeys(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _account(config, "hal", key)
    _account(config, "ivy", SoftAuthenticator())
    with logged_in(config.url("", port="admin")) as admin:
        (listed,) = admin.get("/api/users/hal/passkeys").json()
        assert (listed["user"], listed["name"], listed["rp_id"]) == ("hal", "phone", "localhost")
        assert admin.get("/api/users/nobody/passkeys").status_code == 404
        page = admin.get("/users/hal")
        assert "Passkeys" in page.text and "phone" in page.text
        # The page removes only a passkey of the user it shows.
        (other,) = admin.get("/api/users/ivy/passkeys").json()
        wrong = admin.post(
            "/users/hal",
            data={
                "csrf_token": form_token(page.text),
                "action": "remove_passkey",
                "passkey": str(other["id"]),
                "confirmed": "1",
            },
        )
        assert wrong.status_code == 404
        assert admin.delete(f"/api/passkeys/{listed['id']}").status_code == 204
        assert admin.delete(f"/api/passkeys/{listed['id']}").status_code == 404
        assert admin.get("/api/users/hal/passkeys").json() == []
        removed = admin.get("/api/audit", params={"event": "passkey.removed", "limit": 1})
        assert removed.json()["entries"][0]["detail"]["user"] == "hal"
        # Resetting the second factor removes the passkeys too.
        assert admin.post("/api/users/ivy/reset-second-factor").status_code == 204
        assert admin.get("/api/users/ivy/passkeys").json() == []
    with _client() as client:
        assert _passkey_login(client, config, key)[0].status_code == 401


def test_a_flood_of_login_options_does_not_end_the_ceremonies_of_others(
    env: GatewayConfig,
) -> None:
    """Asking for passkey-login options needs nothing but the login page's token, so a
    stranger can ask as often as they like: that must not push out the ceremonies other
    people are in the middle of (making a passkey, logging in with one)."""
    config, key, other_key = env, SoftAuthenticator(), SoftAuthenticator()
    _new_user(config, "kai")
    _account(config, "lou", other_key)
    with _client() as owner, _client() as visitor, _client() as stranger:
        csrf = _password_login(owner, config, "kai")
        making = owner.post(
            _url(config, "/.gateway/account/passkeys/options"), json={"csrf_token": csrf}
        )
        assert making.status_code == 200, making.text
        visitor_csrf = _login_csrf(visitor, config)
        login_options = _url(config, "/.gateway/login/passkey/options")
        logging_in = visitor.post(login_options, json={"csrf_token": visitor_csrf})
        assert logging_in.status_code == 200, logging_in.text
        stranger_csrf = _login_csrf(stranger, config)
        for _ in range(1000):
            asked = stranger.post(login_options, json={"csrf_token": stranger_csrf})
            assert asked.status_code == 200, asked.text
        made = owner.post(
            _url(config, "/.gateway/account/passkeys"),
            json={
                "csrf_token": csrf,
                "name": "phone",
                "credential": key.create(making.json()["options"], _origin(config)),
            },
        )
        assert made.status_code == 200, made.text
        done = visitor.post(
            _url(config, "/.gateway/login/passkey"),
            json={
                "csrf_token": visitor_csrf,
                "ticket": logging_in.json()["ticket"],
                "credential": other_key.get(logging_in.json()["options"], _origin(config)),
                "next": "/",
            },
        )
        assert done.status_code == 200, done.text


def test_a_passkey_name_with_control_characters_is_refused(env: GatewayConfig) -> None:
    """The name is shown in the admin's terminal (``passkey list``, ``audit``): an escape
    sequence in it would be the terminal's command, as for token names and labels."""
    config, key = env, SoftAuthenticator()
    _new_user(config, "mia")
    with _client() as client:
        csrf = _password_login(client, config, "mia")
        options = client.post(
            _url(config, "/.gateway/account/passkeys/options"), json={"csrf_token": csrf}
        )
        assert options.status_code == 200, options.text
        made = client.post(
            _url(config, "/.gateway/account/passkeys"),
            json={
                "csrf_token": csrf,
                "name": "phone\x1b]0;owned\x07\x1b[2J",
                "credential": key.create(options.json()["options"], _origin(config)),
            },
            headers={"Accept-Language": "nl"},
        )
        assert made.status_code == 400, made.text
        # The page's script shows the refusal to the person: in their language.
        english = "A passkey's name is plain text, without control characters."
        dutch = i18n.translations("nl").gettext(english)
        assert dutch != english
        assert made.json()["detail"] == dutch
    listed = cli("passkey", "list", "--user", "mia", config=config.path)
    assert "\x1b" not in listed.stdout


def test_making_a_passkey_needs_a_fresh_proof(env: GatewayConfig) -> None:
    """After a restart the session goes on and its proof (kept in memory) does not: the
    options are refused until the password is confirmed. Runs last: it restarts the
    module's gateway."""
    config = env
    _new_user(config, "jo")
    with _client() as client:
        csrf = _password_login(client, config, "jo")
        RUNNING.pop().close()
        RUNNING.append(GatewayProcess(config))
        options = _url(config, "/.gateway/account/passkeys/options")
        refused = client.post(options, json={"csrf_token": csrf})
        assert refused.status_code == 401 and refused.json()["error"] == "fresh_proof"
        # Without script, the form asks for the password and returns to the account page.
        asked = client.post(
            _url(config, "/.gateway/account/passkeys/begin"), data={"csrf_token": csrf}
        )
        assert asked.status_code == 401 and "Confirm it is you" in asked.text
        proven = client.post(
            _url(config, "/.gateway/account/confirm"),
            data={"csrf_token": csrf, "password": USER_PASSWORD, "next": "/.gateway/account"},
        )
        assert proven.status_code == 303
        assert client.post(options, json={"csrf_token": csrf}).status_code == 200

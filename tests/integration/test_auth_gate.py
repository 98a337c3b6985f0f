"""The one gate for every guess of a secret, over real sockets: each test is a finding of
the hostile review that it reproduces (and that failed before the gate).

Every test sends from its own loopback address (``127.0.0.N``; the proxy sees the socket's
address) and uses its own account, so the bans one test causes never touch another.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sqlite3
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli, wait_for

PASSWORD = "correct-horse-battery-staple"
USER_PASSWORD = "a-user-password-123"
BAN_AFTER = 3
_addresses = itertools.count(10)


def _auth(**bruteforce: object) -> str:
    tuning = {
        "never_ban": [],
        "free_attempts": 1000,
        "ban_after": BAN_AFTER,
        "ban_duration": 900,
        **bruteforce,
    }
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in tuning.items())
    return (
        f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
        f"[auth.bruteforce]\n{lines}\n"
    )


def _source() -> str:
    """A loopback address no other test of this module sends from."""
    return f"127.0.0.{next(_addresses)}"


def _client(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=15)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("gate"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=_auth(),
    )
    gateway = GatewayProcess(config)
    try:
        yield config
    finally:
        gateway.close()
        simulator.close()


def _new_user(config: GatewayConfig, name: str, *, totp_secret: str | None = None) -> None:
    result = cli(
        "user",
        "add",
        name,
        "--role",
        "user",
        "--password-stdin",
        config=config.path,
        input=USER_PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    if totp_secret:
        with sqlite3.connect(config.data_dir / "gateway.db") as db:
            db.execute(
                "UPDATE user SET totp_secret = ?, totp_enabled = 1 WHERE name = ?",
                (totp_secret, name),
            )


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, text[:2000]
    return found.group(1)


def _password_step(client: httpx.Client, config: GatewayConfig, name: str) -> httpx.Response:
    """The login form's first step, as a browser submits it."""
    token = _csrf(client.get(config.url("/.gateway/login")).text)
    return client.post(
        config.url("/.gateway/login"),
        data={"username": name, "password": USER_PASSWORD, "next": "/", "csrf_token": token},
    )


def _challenge_fields(step: httpx.Response) -> dict[str, str]:
    assert step.status_code == 200 and 'name="code"' in step.text, step.text[:2000]
    return dict(re.findall(r'name="(challenge|csrf_token|next)" value="([^"]*)"', step.text))


def _json_login(client: httpx.Client, config: GatewayConfig, name: str, password: str, **extra):
    return client.post(
        config.url("/.gateway/api/login"),
        json={"username": name, "password": password, **extra},
    )


def _fail_until_banned(config: GatewayConfig, name: str) -> None:
    """``BAN_AFTER`` wrong passwords for ``name`` from a stranger's address: the account
    is banned (and that address)."""
    with _client(_source()) as stranger:
        codes = [
            _json_login(stranger, config, name, "wrong-password-xyz").status_code
            for _ in range(BAN_AFTER)
        ]
        assert codes == [401] * BAN_AFTER
        assert _json_login(stranger, config, name, USER_PASSWORD).status_code == 429


def _failures(config: GatewayConfig, name: str) -> int:
    """How many guesses for ``name`` were checked and found wrong (the audit log)."""
    with sqlite3.connect(config.data_dir / "gateway.db") as db:
        row = db.execute(
            "SELECT count(*) FROM audit_log WHERE event = 'login.failure' AND actor = ?", (name,)
        ).fetchone()
    return int(row[0])


# -- finding 1: the second factor was outside the gate ----------------------------------------
def test_a_pending_second_factor_step_is_refused_while_the_account_is_banned(env) -> None:
    config = env
    secret = pyotp.random_base32()
    _new_user(config, "pending2fa", totp_secret=secret)
    with _client(_source()) as browser:
        fields = _challenge_fields(_password_step(browser, config, "pending2fa"))
        _fail_until_banned(config, "pending2fa")
        checked = _failures(config, "pending2fa")
        right = browser.post(
            config.url("/.gateway/login/totp"),
            data={**fields, "code": pyotp.TOTP(secret).now()},
        )
        wrong = browser.post(config.url("/.gateway/login/totp"), data={**fields, "code": "000000"})
    # The same refusal, right code or wrong, and neither was checked.
    assert (right.status_code, wrong.status_code) == (429, 429)
    assert right.headers["retry-after"] and wrong.headers["retry-after"]
    assert "cemm_session" not in right.headers.get("set-cookie", "")
    assert _failures(config, "pending2fa") == checked


def test_at_most_five_second_factor_steps_wait_per_account(env) -> None:
    config = env
    secret = pyotp.random_base32()
    _new_user(config, "manysteps", totp_secret=secret)
    with _client(_source()) as browser:
        steps = [_challenge_fields(_password_step(browser, config, "manysteps")) for _ in range(7)]
        step = config.url("/.gateway/login/totp")

        def send(fields: dict[str, str], code: str) -> httpx.Response:
            # With the token of the form's CSRF cookie as it is now (each page renews it).
            token = browser.cookies.get("cemm_login_csrf")
            return browser.post(step, data={**fields, "csrf_token": token, "code": code})

        # The two oldest steps were ended by the newer ones: no code is tried there.
        for fields in steps[:2]:
            gone = send(fields, "000000")
            assert gone.status_code == 403, gone.text[:500]
            assert "expired" in gone.text
        assert _failures(config, "manysteps") == 0
        # The five newest still wait: a wrong code is checked there.
        assert send(steps[2], "000000").status_code == 401
        right = send(steps[-1], pyotp.TOTP(secret).now())
        assert right.status_code == 303
    assert _failures(config, "manysteps") == 1


def _logged_in(config: GatewayConfig, browser: httpx.Client, name: str, secret: str) -> str:
    """Log ``name`` in through both steps; the account page's CSRF token."""
    fields = _challenge_fields(_password_step(browser, config, name))
    done = browser.post(
        config.url("/.gateway/login/totp"), data={**fields, "code": pyotp.TOTP(secret).now()}
    )
    assert done.status_code == 303
    return _csrf(browser.get(config.url("/.gateway/account")).text)


def test_turning_the_second_factor_off_is_behind_the_gate(env) -> None:
    config = env
    secret = pyotp.random_base32()
    _new_user(config, "disabler", totp_secret=secret)
    with _client(_source()) as browser:
        csrf = _logged_in(config, browser, "disabler", secret)
        disable = config.url("/.gateway/account/totp/disable")
        wrong = [
            browser.post(disable, data={"csrf_token": csrf, "code": f"00000{i}"}).status_code
            for i in range(BAN_AFTER)
        ]
        assert wrong == [400] * BAN_AFTER
        # No longer an oracle: the right code is not even checked now.
        recovery_or_totp = pyotp.TOTP(secret).at(time.time() + 30)
        refused = browser.post(disable, data={"csrf_token": csrf, "code": recovery_or_totp})
        assert refused.status_code == 429 and refused.headers["retry-after"]
    with sqlite3.connect(config.data_dir / "gateway.db") as db:
        (enabled,) = db.execute("SELECT totp_enabled FROM user WHERE name = 'disabler'").fetchone()
    assert enabled == 1


# -- finding 6: anyone could lock the owner out ------------------------------------------------
def test_a_known_device_of_the_owner_still_logs_in_while_the_account_is_banned(env) -> None:
    config = env
    _new_user(config, "owner")
    with _client(_source()) as phone:
        assert _json_login(phone, config, "owner", USER_PASSWORD).status_code == 200
        _fail_until_banned(config, "owner")
        # A stranger with the right password, from an address never banned: refused.
        with _client(_source()) as stranger:
            assert _json_login(stranger, config, "owner", USER_PASSWORD).status_code == 429
        # The owner's phone: in.
        again = _json_login(phone, config, "owner", USER_PASSWORD)
        assert again.status_code == 200, again.text
        # The phone's own wrong guesses still count: against the phone (and its address).
        codes = [
            _json_login(phone, config, "owner", "wrong-password-xyz").status_code
            for _ in range(BAN_AFTER)
        ]
        assert codes == [401] * BAN_AFTER
        assert _json_login(phone, config, "owner", USER_PASSWORD).status_code == 429


def test_a_device_cookie_of_another_account_does_not_pass_the_ban(env) -> None:
    config = env
    _new_user(config, "victim")
    _new_user(config, "intruder")
    with _client(_source()) as device:
        assert _json_login(device, config, "intruder", USER_PASSWORD).status_code == 200
        _fail_until_banned(config, "victim")
        assert _json_login(device, config, "victim", USER_PASSWORD).status_code == 429


# -- finding 4: logout CSRF ----------------------------------------------------------------------
def test_a_cross_site_logout_changes_nothing(env) -> None:
    config = env
    _new_user(config, "stayin")
    with _client(_source()) as browser:
        login = _json_login(browser, config, "stayin", USER_PASSWORD)
        csrf = login.json()["csrf_token"]
        cross_site = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        # The browser sends no SameSite=Lax cookie with a cross-site POST ...
        cookieless = httpx.post(config.url("/.gateway/logout"), headers=cross_site, timeout=10)
        assert cookieless.status_code == 403
        assert "cemm_session" not in cookieless.headers.get("set-cookie", "")
        # ... and with the cookie but without the token it is refused too.
        with_cookie = browser.post(config.url("/.gateway/logout"), headers=cross_site)
        assert with_cookie.status_code == 403
        assert "cemm_session" not in with_cookie.headers.get("set-cookie", "")
        assert browser.get(config.url("/.gateway/account")).status_code == 200
        # Same-origin (the browser says so) or with the token: logged out.
        same_origin = browser.post(
            config.url("/.gateway/logout"), headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert same_origin.status_code == 200
        assert browser.get(config.url("/.gateway/account")).status_code == 303
        login = _json_login(browser, config, "stayin", USER_PASSWORD)
        with_token = browser.post(
            config.url("/.gateway/logout"), data={"csrf_token": login.json()["csrf_token"]}
        )
        assert with_token.status_code == 200 and csrf != login.json()["csrf_token"]
        assert browser.get(config.url("/.gateway/account")).status_code == 303


# -- peer-link tokens are guesses too ------------------------------------------------------------
def test_peer_link_guesses_count_like_wrong_passwords(env) -> None:
    config = env
    _new_user(config, "linkguess")
    with _client(_source()) as guesser:
        codes = [
            guesser.get(config.url(f"/.gateway/peer/guess-{i}")).status_code
            for i in range(BAN_AFTER)
        ]
        assert codes == [404] * BAN_AFTER
        refused = guesser.get(config.url("/.gateway/peer/guess-again"))
        assert refused.status_code == 429 and refused.headers["retry-after"]
        # The same address is banned for logins as well: one gate.
        assert _json_login(guesser, config, "linkguess", USER_PASSWORD).status_code == 429


# -- finding 2: racing the gate ------------------------------------------------------------------
async def _wrong_logins_at_once(config: GatewayConfig, name: str, count: int) -> list[int]:
    """``count`` wrong logins for ``name`` at the same moment, each from its own address."""
    clients = [
        httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.1.{i + 1}"), timeout=60
        )
        for i in range(count)
    ]
    start = asyncio.Event()

    async def one(client: httpx.AsyncClient) -> int:
        await start.wait()
        response = await client.post(
            config.url("/.gateway/api/login"),
            json={"username": name, "password": "wrong-password-xyz"},
        )
        return response.status_code

    try:
        tasks = [asyncio.create_task(one(client)) for client in clients]
        await asyncio.sleep(0)
        start.set()
        return list(await asyncio.gather(*tasks))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


@pytest.mark.timeout(240)
def test_concurrent_wrong_logins_are_counted_and_every_step_refuses_alike(
    tmp_path, simulator: SimulatorThread
) -> None:
    ban_after, ban_duration = 10, 30
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=_auth(ban_after=ban_after, ban_duration=ban_duration),
    )
    gateway = GatewayProcess(config)
    try:
        _new_user(config, "target")
        # The owner's phone logs in once and turns two-step verification on.
        phone = _client("127.0.0.200")
        login = _json_login(phone, config, "target", USER_PASSWORD)
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        setup = phone.post(config.url("/.gateway/account/totp/begin"), data={"csrf_token": csrf})
        secret = re.search(r"secret=([A-Z2-7]+)", setup.text).group(1)
        confirmed = phone.post(
            config.url("/.gateway/account/totp/confirm"),
            data={"csrf_token": csrf, "code": pyotp.TOTP(secret).now()},
        )
        recovery = re.findall(r"\b[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}\b", confirmed.text)
        assert len(recovery) == 10
        # Someone else who has the password waits at the second step.
        waiting = _client("127.0.0.201")
        fields = _challenge_fields(_password_step(waiting, config, "target"))

        codes = asyncio.run(_wrong_logins_at_once(config, "target", 100))
        checked = codes.count(401)
        print(f"100 concurrent wrong logins: {checked} checked (401), {codes.count(429)} refused")
        assert set(codes) <= {401, 429}
        assert checked <= ban_after
        assert codes.count(429) == 100 - checked
        assert _failures(config, "target") == checked
        bans = json.loads(cli("bans", "list", "--json", config=config.path).stdout)
        (ban,) = [b for b in bans if b["subject"] == "user:target"]

        # Every step refuses alike, right secret or wrong, and checks nothing.
        stranger = _client("127.0.0.202")
        next_code = pyotp.TOTP(secret).at(time.time() + 30)
        answers = {
            "password": _json_login(stranger, config, "target", USER_PASSWORD),
            "password+totp": _json_login(stranger, config, "target", USER_PASSWORD, totp=next_code),
            "form password": _password_step(stranger, config, "target"),
            "totp step, right code": waiting.post(
                config.url("/.gateway/login/totp"), data={**fields, "code": next_code}
            ),
            "totp step, wrong code": waiting.post(
                config.url("/.gateway/login/totp"), data={**fields, "code": "000000"}
            ),
            "totp step, recovery code": waiting.post(
                config.url("/.gateway/login/totp"), data={**fields, "code": recovery[1]}
            ),
        }
        refused_before = time.time()
        statuses = {step: response.status_code for step, response in answers.items()}
        assert statuses == dict.fromkeys(answers, 429), statuses
        assert all(int(r.headers["retry-after"]) > 0 for r in answers.values())
        assert refused_before < ban["until"], "the ban ended before the steps were tried"
        assert _failures(config, "target") == checked

        # The owner's phone is a known device: in, with a recovery code as second factor.
        owner = _json_login(phone, config, "target", USER_PASSWORD, totp=recovery[0])
        assert owner.status_code == 200, owner.text

        # When the ban ends the stranger's recovery code works: it was never used up.
        wait_for(lambda: time.time() > ban["until"], "the ban ends", timeout=ban_duration + 30)
        after = _json_login(stranger, config, "target", USER_PASSWORD, totp=recovery[1])
        assert after.status_code == 200, after.text
        for client in (phone, waiting, stranger):
            client.close()
    finally:
        gateway.close()


# -- new recovery codes were minted with only the session ------------------------------------
_CODES = re.compile(r"\b[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}\b")


@pytest.mark.timeout(120)
def test_sensitive_changes_need_a_fresh_proof(tmp_path, simulator: SimulatorThread) -> None:
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=_auth(),
    )
    gateway = GatewayProcess(config)
    try:
        _new_user(config, "careful")
        browser = _client(_source())
        login = _json_login(browser, config, "careful", USER_PASSWORD)
        csrf = login.json()["csrf_token"]
        # Within five minutes of the login: the second factor can be set up at once.
        setup = browser.post(config.url("/.gateway/account/totp/begin"), data={"csrf_token": csrf})
        secret = re.search(r"secret=([A-Z2-7]+)", setup.text).group(1)
        confirmed = browser.post(
            config.url("/.gateway/account/totp/confirm"),
            data={"csrf_token": csrf, "code": pyotp.TOTP(secret).now()},
        )
        assert len(_CODES.findall(confirmed.text)) == 10

        # The session goes on after a restart; its proof (kept in memory) does not.
        gateway.terminate()
        gateway.close()
        gateway = GatewayProcess(config)
        assert browser.get(config.url("/.gateway/account")).status_code == 200
        asks = {
            "recovery-codes": {},
            "totp/disable": {"code": ""},
            "password": {
                "current_password": "",
                "new_password": "another-password-456",
                "new_password_again": "another-password-456",
            },
        }
        for action, fields in asks.items():
            asked = browser.post(
                config.url(f"/.gateway/account/{action}"), data={"csrf_token": csrf, **fields}
            )
            assert asked.status_code == 401, (action, asked.text[:500])
            assert "Confirm it is you" in asked.text and not _CODES.findall(asked.text)
        assert _json_login(browser, config, "careful", "another-password-456").status_code == 401

        confirm = config.url("/.gateway/account/confirm")
        wrong = browser.post(confirm, data={"csrf_token": csrf, "password": "not-it-at-all"})
        assert wrong.status_code == 401 and _failures(config, "careful") == 2
        proven = browser.post(confirm, data={"csrf_token": csrf, "password": USER_PASSWORD})
        assert proven.status_code == 303 and proven.headers["location"] == "/.gateway/account"
        fresh = browser.post(
            config.url("/.gateway/account/recovery-codes"), data={"csrf_token": csrf}
        )
        assert fresh.status_code == 200 and len(_CODES.findall(fresh.text)) == 10
        browser.close()
    finally:
        gateway.close()


def test_a_right_password_does_not_wipe_out_the_wrong_codes_after_it(env) -> None:
    # Someone who has the password tries codes, each from another address.
    config = env
    secret = pyotp.random_base32()
    _new_user(config, "haspassword", totp_secret=secret)
    for _ in range(BAN_AFTER):
        with _client(_source()) as guesser:
            wrong = _json_login(guesser, config, "haspassword", USER_PASSWORD, totp="000000")
            assert wrong.status_code == 401
    with _client(_source()) as guesser:
        right = _json_login(
            guesser, config, "haspassword", USER_PASSWORD, totp=pyotp.TOTP(secret).now()
        )
        assert right.status_code == 429


async def _timed_wrong_logins(config: GatewayConfig, name: str, count: int) -> list[float]:
    """``count`` wrong logins for ``name`` at once, from as many addresses: the seconds
    each took to be answered."""
    clients = [
        httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.2.{i + 1}"), timeout=60
        )
        for i in range(count)
    ]

    async def one(client: httpx.AsyncClient) -> float:
        started = time.monotonic()
        response = await client.post(
            config.url("/.gateway/api/login"),
            json={"username": name, "password": "wrong-password-xyz"},
        )
        assert response.status_code == 401
        return time.monotonic() - started

    try:
        return list(await asyncio.gather(*(one(client) for client in clients)))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


@pytest.mark.timeout(120)
def test_parallel_guesses_are_slowed_like_serial_ones(tmp_path, simulator) -> None:
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=_auth(free_attempts=0, max_delay=2, ban_after=1000),
    )
    gateway = GatewayProcess(config)
    try:
        _new_user(config, "slowed")
        took = asyncio.run(_timed_wrong_logins(config, "slowed", 8))
        print(f"8 parallel wrong logins answered after {sorted(round(t, 2) for t in took)} s")
        # Each waits for the one before plus its own delay: 0, 0.5, 1, 2, 2, 2, 2, 2 s, so
        # the last is answered 11.5 s after they started (checked at once, all 8 took ~1 s).
        assert max(took) >= 11.0
    finally:
        gateway.close()


def test_a_typed_user_name_cannot_send_the_admins_terminal_escape_sequences(env) -> None:
    """A stranger's wrong login is audited under the name typed; ``cemm-gateway audit``
    shows it in the admin's terminal, where ESC starts a command (set the title, clear
    the screen, write the clipboard): the CLI shows control characters escaped."""
    typed = "x\x1b]0;owned\x07\x1b[2J\x9b"
    with _client(_source()) as stranger:
        wrong = stranger.post(
            env.url("/.gateway/api/login"), json={"username": typed, "password": "wrong-one"}
        )
        assert wrong.status_code == 401
    shown = cli("audit", "--event", "login.failure", config=env.path)
    assert shown.returncode == 0, shown.stderr
    assert "x\\x1b]0;owned\\x07\\x1b[2J\\x9b" in shown.stdout
    assert not any((ord(c) < 32 and c != "\n") or 127 <= ord(c) < 160 for c in shown.stdout)

"""``[auth] require_second_factor = "admins"``: an admin without a second factor is sent
to set one up right after the password and reaches nothing until done (the CEMM's ports,
the account page, the admin app); a plain user is not asked; the dashboard warns about
each admin without one. One gateway for the module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pyotp
import pytest

from tests.support.admin import logged_in
from tests.support.authenticator import SoftAuthenticator
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli
from tests.support.oidc_provider import OidcProvider

PASSWORD = "correct-horse-battery-staple"
PROVIDER: list[OidcProvider] = []
RECOVERY: list[str] = []  # the admin's recovery codes, from the first test
USER_PASSWORD = "a-user-password-123"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("required"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
    )
    callback = config.url("/.gateway/oidc/callback")
    with OidcProvider(redirect_uri=callback) as provider:
        config.extra = (
            f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
            'public_hostnames = ["localhost"]\nrequire_second_factor = "admins"\n'
            "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 1000\nban_after = 1000\n"
            f'[oidc]\nenabled = true\ndiscovery_url = "{provider.discovery_url}"\n'
            f'client_id = "{provider.client_id}"\nclient_secret = "{provider.client_secret}"\n'
            f'redirect_uri = "{callback}"\n'
        )
        PROVIDER.append(provider)
        gateway = GatewayProcess(config)
        try:
            yield config
        finally:
            gateway.close()
            simulator.close()


def _add(config: GatewayConfig, name: str, role: str) -> None:
    result = cli(
        "user", "add", name, "--role", role, "--password-stdin",
        config=config.path, input=USER_PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _url(config: GatewayConfig, path: str) -> str:
    return config.url(path, host="localhost")


def _password(
    client: httpx.Client, config: GatewayConfig, name: str, password: str
) -> httpx.Response:
    page = client.get(_url(config, "/.gateway/login"))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        _url(config, "/.gateway/login"),
        data={"username": name, "password": password, "csrf_token": csrf, "next": "/app"},
    )


def _locked_out(client: httpx.Client, config: GatewayConfig) -> None:
    """Nothing but the enrolment page opens."""
    assert client.get(_url(config, "/api/v1/public/cemm")).status_code != 200
    assert client.get(_url(config, "/.gateway/account")).status_code == 303
    admin_page = client.get(config.url("/api/status", port="admin"))
    assert admin_page.status_code in (401, 403)


def test_an_admin_without_a_second_factor_must_set_up_an_authenticator(
    env: GatewayConfig,
) -> None:
    config = env
    with httpx.Client(timeout=15) as client:
        sent = _password(client, config, "admin", PASSWORD)
        assert sent.status_code == 303 and sent.headers["location"] == "/.gateway/enrol"
        _locked_out(client, config)
        page = client.get(_url(config, "/.gateway/enrol"))
        assert page.status_code == 200 and "authenticator app" in page.text
        secret = re.search(r'class="secret">([^<]+)<', page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        wrong = client.post(
            _url(config, "/.gateway/enrol/totp"), data={"code": "000000", "csrf_token": csrf}
        )
        assert wrong.status_code == 400
        _locked_out(client, config)
        done = client.post(
            _url(config, "/.gateway/enrol/totp"),
            data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf},
        )
        assert done.status_code == 200 and "Recovery codes" in done.text
        assert 'href="/app"' in done.text
        RECOVERY.extend(re.findall(r"<li><code>([^<]+)</code></li>", done.text))
        assert client.get(_url(config, "/api/v1/public/cemm")).status_code == 200
    # The JSON login of an admin without a second factor is refused the same way.
    _add(config, "root2", "admin")
    refused = httpx.post(
        _url(config, "/.gateway/api/login"),
        json={"username": "root2", "password": USER_PASSWORD},
        timeout=15,
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "second_factor_setup_required"


def test_an_admin_may_set_up_a_passkey_instead(env: GatewayConfig) -> None:
    config, key = env, SoftAuthenticator()
    _add(config, "root3", "admin")
    origin = f"http://localhost:{config.http_port}"
    with httpx.Client(timeout=15) as client:
        assert _password(client, config, "root3", USER_PASSWORD).status_code == 303
        page = client.get(_url(config, "/.gateway/enrol"))
        csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        options = client.post(
            _url(config, "/.gateway/enrol/passkey/options"), json={"csrf_token": csrf}
        )
        assert options.status_code == 200, options.text
        made = client.post(
            _url(config, "/.gateway/enrol/passkey"),
            json={
                "csrf_token": csrf,
                "name": "phone",
                "credential": key.create(options.json()["options"], origin),
            },
        )
        assert made.status_code == 200 and made.json() == {"next": "/app"}
        assert client.get(_url(config, "/api/v1/public/cemm")).status_code == 200


def test_a_user_is_not_asked_and_the_dashboard_warns_about_admins(env: GatewayConfig) -> None:
    config = env
    _add(config, "ulla", "user")
    with httpx.Client(timeout=15) as client:
        sent = _password(client, config, "ulla", USER_PASSWORD)
        assert sent.status_code == 303 and sent.headers["location"] == "/app"
    _add(config, "root4", "admin")
    assert RECOVERY, "the first test of the module saves the admin's recovery codes"
    with logged_in(config.url("", port="admin"), "admin", PASSWORD, totp=RECOVERY[0]) as admin:
        page = admin.get("/")
        assert page.status_code == 200
        warned = re.findall(r'data-admin-without-second-factor="([^"]+)"', page.text)
        assert "root4" in warned and "root2" in warned
        assert "admin" not in warned and "root3" not in warned


def test_an_oidc_sign_in_is_not_asked_for_a_second_factor(env: GatewayConfig) -> None:
    """The provider's own second factor applies there; the same admin's password login is
    sent to set one up."""
    config = env
    made = cli(
        "user", "add", "olga", "--role", "admin", "--email", "olga@example.org",
        "--password-stdin", config=config.path, input=USER_PASSWORD + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with httpx.Client(timeout=15) as client:
        sent = _password(client, config, "olga", USER_PASSWORD)
        assert sent.headers["location"] == "/.gateway/enrol"
    with httpx.Client(timeout=15) as client:
        start = client.get(config.url(f"/.gateway/oidc/start?{urlencode({'next': '/x'})}"))
        assert start.status_code == 303
        query = PROVIDER[0].login_as(
            start.headers["location"], sub="s-olga", email="olga@example.org"
        )
        done = client.get(config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert done.status_code == 303 and done.headers["location"] == "/x"
        assert client.get(config.url("/api/v1/public/cemm")).status_code == 200


def test_a_user_made_admin_gets_no_admin_app_without_a_second_factor(
    env: GatewayConfig,
) -> None:
    """A plain user logs in with the password alone (users are not asked); made an admin
    later, that session must not open the admin app until the account has a second factor,
    as a new password login would not."""
    config = env
    _add(config, "pia", "user")
    with httpx.Client(timeout=15) as client:
        sent = _password(client, config, "pia", USER_PASSWORD)
        assert sent.status_code == 303 and sent.headers["location"] == "/app"
        promoted = cli("user", "role", "pia", "admin", config=config.path)
        assert promoted.returncode == 0, promoted.stderr
        admin_app = client.get(config.url("/api/status", port="admin", host="localhost"))
        assert admin_app.status_code in (401, 403), admin_app.status_code
        again = _password(client, config, "pia", USER_PASSWORD)
        assert again.headers["location"] == "/.gateway/enrol"

"""Single sign-on end to end: the gateway, a real OpenID Connect provider (oidc-provider-mock,
a provider server built on authlib) and the simulated CEMM, all on loopback. The test plays
the browser: it follows the gateway's redirect to the provider, logs in there, and brings
the provider's answer back to the gateway's callback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli
from tests.support.oidc_provider import OidcProvider


@dataclass
class Env:
    config: GatewayConfig
    provider: OidcProvider


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("oidc"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
    )
    callback = config.url("/.gateway/oidc/callback")
    with OidcProvider(redirect_uri=callback) as provider:
        config.extra = (
            '[auth]\ninitial_admin_password = "correct-horse-battery-staple"\n'
            "[oidc]\n"
            "enabled = true\n"
            f'discovery_url = "{provider.discovery_url}"\n'
            f'client_id = "{provider.client_id}"\n'
            f'client_secret = "{provider.client_secret}"\n'
            f'redirect_uri = "{callback}"\n'
            'allowed_emails = ["new.person@example.org"]\n'
            'allowed_groups = ["cemm-viewers"]\n'
            'label = "Sign in with Example SSO"\n'
        )
        config.write()
        linked = cli(
            "user",
            "add",
            "linda",
            "--role",
            "admin",
            "--email",
            "linda@example.org",
            "--password-stdin",
            config=config.path,
            input="a-local-password-77\n",
        )
        assert linked.returncode == 0, linked.stderr
        gateway = GatewayProcess(config)
        try:
            yield Env(config, provider)
        finally:
            gateway.close()
            simulator.close()


def _sign_in(
    env: Env, client: httpx.Client, next_url: str = "/dashboard", **claims
) -> httpx.Response:
    start = client.get(env.config.url(f"/.gateway/oidc/start?{urlencode({'next': next_url})}"))
    assert start.status_code == 303
    authorization_url = start.headers["location"]
    assert authorization_url.startswith(env.provider.issuer)
    query = env.provider.login_as(authorization_url, **claims)
    return client.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))


def test_login_page_offers_single_sign_on(env: Env) -> None:
    page = httpx.get(env.config.url("/.gateway/login"), timeout=5)
    assert "Sign in with Example SSO" in page.text
    assert "/.gateway/oidc/start" in page.text


def test_allowed_email_creates_an_oidc_managed_user(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        done = _sign_in(env, client, sub="sub-new", email="new.person@example.org")
        assert done.status_code == 303
        assert done.headers["location"] == "/dashboard"
        assert client.get(env.config.url("/api/v1/public/cemm")).status_code == 200
    listed = {
        u["name"]: u
        for u in json.loads(cli("user", "list", "--json", config=env.config.path).stdout)
    }
    assert listed["new.person"]["role"] == "user"
    assert listed["new.person"]["oidc_managed"] is True
    assert listed["new.person"]["has_password"] is False
    # The second sign-in finds the same user by issuer and subject.
    with httpx.Client(timeout=10) as client:
        assert (
            _sign_in(env, client, sub="sub-new", email="new.person@example.org").status_code == 303
        )
    assert (
        len(
            [
                u
                for u in json.loads(cli("user", "list", "--json", config=env.config.path).stdout)
                if u["oidc_managed"]
            ]
        )
        == 1
    )


def test_group_membership_admits(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        done = _sign_in(
            env, client, sub="sub-group", email="viewer@example.org", groups=["cemm-viewers"]
        )
        assert done.status_code == 303
        assert client.get(env.config.url("/api/v1/public/cemm")).status_code == 200


def test_verified_email_of_a_local_user_logs_in_as_that_user(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        done = _sign_in(env, client, sub="sub-linda", email="linda@example.org")
        assert done.status_code == 303
        assert client.get(env.config.url("/api/v1/public/cemm")).status_code == 200
    sessions = json.loads(
        cli("session", "list", "--user", "linda", "--json", config=env.config.path).stdout
    )
    assert len(sessions) == 1


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "sub-stranger", "email": "stranger@example.org"},
        # An unverified address proves nothing, even one that is allowed.
        {"sub": "sub-unverified", "email": "new.person@example.org", "email_verified": False},
        {"sub": "sub-unverified-linda", "email": "linda@example.org", "email_verified": None},
    ],
)
def test_unknown_or_unverified_identities_are_refused(env: Env, claims: dict) -> None:
    with httpx.Client(timeout=10) as client:
        refused = _sign_in(env, client, **claims)
        assert refused.status_code == 403
        assert "not allowed" in refused.text
        assert "cemm_session" not in client.cookies
        assert client.get(env.config.url("/api/v1/public/cemm")).status_code == 401


def test_a_forged_or_replayed_callback_is_refused(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        start = client.get(env.config.url("/.gateway/oidc/start"))
        query = env.provider.login_as(
            start.headers["location"], sub="sub-new", email="new.person@example.org"
        )
        forged = client.get(
            env.config.url(f"/.gateway/oidc/callback?{urlencode({**query, 'state': 'forged'})}")
        )
        assert forged.status_code == 400
        first = client.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert first.status_code == 303
    with httpx.Client(timeout=10) as other:
        replay = other.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert replay.status_code == 400
        assert "cemm_session" not in other.cookies


def test_provider_denial_is_shown_plainly(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        start = client.get(env.config.url("/.gateway/oidc/start"))
        query = env.provider.deny(start.headers["location"])
        denied = client.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert denied.status_code == 400
        assert "access_denied" in denied.text


def test_a_callback_from_another_browsers_sign_in_is_refused(env: Env) -> None:
    # The attacker signs in as themself and stops before the callback ...
    with httpx.Client(timeout=10) as attacker:
        start = attacker.get(env.config.url("/.gateway/oidc/start"))
        query = env.provider.login_as(
            start.headers["location"], sub="sub-new", email="new.person@example.org"
        )
    # ... and makes the victim's browser open it: not logged in as the attacker.
    with httpx.Client(timeout=10) as victim:
        refused = victim.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert refused.status_code == 400
        assert "another browser" in refused.text
        assert "cemm_session" not in victim.cookies
        assert victim.get(env.config.url("/api/v1/public/cemm")).status_code == 401


def test_sign_ons_in_progress_are_capped_per_address(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        first = client.get(env.config.url("/.gateway/oidc/start"))
        first_state = client.cookies.get("cemm_oidc_state")
        for _ in range(5):
            assert client.get(env.config.url("/.gateway/oidc/start")).status_code == 303
        query = env.provider.login_as(
            first.headers["location"], sub="sub-new", email="new.person@example.org"
        )
    # The oldest of six was dropped (even in the browser that started it).
    with httpx.Client(timeout=10, cookies={"cemm_oidc_state": first_state}) as same_browser:
        dropped = same_browser.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert dropped.status_code == 400
        assert "expired" in dropped.text


def _account_csrf(env: Env, client: httpx.Client) -> str:
    page = client.get(env.config.url("/.gateway/account"))
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_an_oidc_only_user_proves_itself_at_the_provider_again(env: Env) -> None:
    with httpx.Client(timeout=10) as client:
        assert (
            _sign_in(
                env, client, sub="sub-fresh", email="viewer2@example.org", groups=["cemm-viewers"]
            ).status_code
            == 303
        )
        begin = env.config.url("/.gateway/account/totp/begin")
        # A sign-on the provider may have answered from its own session is no fresh proof.
        asked = client.post(begin, data={"csrf_token": _account_csrf(env, client)})
        assert asked.status_code == 303
        restart = asked.headers["location"]
        assert restart.startswith("/.gateway/oidc/start?")
        assert "reauthenticate=1" in restart
        start = client.get(env.config.url(restart))
        assert start.status_code == 303
        authorization = start.headers["location"]
        assert parse_qs(urlsplit(authorization).query)["prompt"] == ["login"]
        query = env.provider.login_as(
            authorization, sub="sub-fresh", email="viewer2@example.org", groups=["cemm-viewers"]
        )
        back = client.get(env.config.url(f"/.gateway/oidc/callback?{urlencode(query)}"))
        assert back.status_code == 303 and back.headers["location"] == "/.gateway/account"
        setup = client.post(begin, data={"csrf_token": _account_csrf(env, client)})
        assert setup.status_code == 200 and "<svg" in setup.text

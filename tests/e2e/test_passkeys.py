"""Passkeys in Chromium with a virtual authenticator (the DevTools protocol's WebAuthn
domain: CTAP2, internal transport, resident keys, user verification), on
``http://localhost`` - a secure context without a certificate: make a passkey on the
account page, log out, log in with the passkey alone, log in with the password and the
passkey, remove it and see it refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.admin_browser import Watched
from tests.support.admin import USER_PASSWORD as PASSWORD
from tests.support.admin import AdminEnv, add_user, admin_gateway, auth_config

NO_AUTOFILL = """
if (sessionStorage.getItem("no-autofill") && window.PublicKeyCredential) {
  PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
}
"""
_AUTHENTICATORS: dict[int, str] = {}  # a CDP session's virtual authenticator
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    extra = auth_config().replace("[auth]\n", '[auth]\npublic_hostnames = ["localhost"]\n', 1)
    with admin_gateway(tmp_path_factory.mktemp("passkeys-e2e"), extra=extra) as e:
        add_user(e.config, "nina")
        yield e


def with_authenticator(browser: Any) -> tuple[Watched, Any]:
    """A browser context whose page has a virtual platform authenticator."""
    watched = Watched(browser.new_context())
    cdp = watched.page.context.new_cdp_session(watched.page)
    # The virtual authenticator answers the login page's autofill request by itself, as if
    # the person had picked the passkey from the list; while this flag is set the page
    # makes no autofill request, so the button and the password can be tried.
    watched.page.add_init_script(NO_AUTOFILL)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    _AUTHENTICATORS[id(cdp)] = added["authenticatorId"]
    return watched, cdp


def log_out(page: Any) -> None:
    page.click("button:has-text('Log out')")
    page.locator("[role=status]:has-text('logged out')").wait_for()


def log_in_and_out(
    page: Any, base: str, *, password: bool, passkey: bool, expect_refusal: bool = False
) -> None:
    """Log in (password, passkey or both), check the session, log out."""
    page.goto(f"{base}/.gateway/login?next=/.gateway/account")
    if password:
        page.fill("#username", "nina")
        page.fill("#password", PASSWORD)
        page.click("form[action='/.gateway/login'] button[type=submit]")
    if passkey:
        button = page.locator("[data-passkey=login] button")
        button.wait_for(state="visible")
        button.click()
    if expect_refusal:
        message = page.locator("[data-passkey=login] [data-passkey-message]")
        message.wait_for(state="visible")
        assert "not accepted" in message.inner_text()
        return
    page.wait_for_url(f"{base}/.gateway/account")
    assert "Signed in as" in page.content()
    log_out(page)


def test_register_log_in_with_the_passkey_alone_and_after_a_password_remove_it(
    env: AdminEnv, browser: Any
) -> None:
    story(browser, f"http://localhost:{env.config.http_port}", rp_id="localhost")


def story(browser: Any, base: str, *, rp_id: str) -> None:
    """Register, log out, the passkey alone, password + passkey, remove, refused."""
    watched, cdp = with_authenticator(browser)
    page = watched.page
    log_in_and_out(page, base, password=True, passkey=False)
    # Make a passkey on the account page (the password login was a fresh proof).
    page.goto(f"{base}/.gateway/login?next=/.gateway/account")
    page.fill("#username", "nina")
    page.fill("#password", PASSWORD)
    page.click("form[action='/.gateway/login'] button[type=submit]")
    page.wait_for_url(f"{base}/.gateway/account")
    page.fill("#passkey-name", "laptop")
    page.click("[data-passkey=register] button[type=submit]")
    page.locator(".session-device:has-text('laptop')").wait_for()
    (credential,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": _id(cdp)})[
        "credentials"
    ]
    assert credential["isResidentCredential"] and credential["rpId"] == rp_id
    autofill(page, False)
    log_out(page)
    # The passkey alone (the button), then the password and the passkey.
    log_in_and_out(page, base, password=False, passkey=True)
    log_in_and_out(page, base, password=True, passkey=True)
    # The passkey alone through the user-name field's autofill: the page logs in by itself.
    autofill(page, True)
    page.goto(f"{base}/.gateway/login?next=/.gateway/account")
    page.wait_for_url(f"{base}/.gateway/account")
    autofill(page, False)
    # Remove it (the last login was a fresh proof), then it is refused.
    page.click("button:has-text('Remove laptop')")
    page.locator("text=removed").first.wait_for()
    log_out(page)
    log_in_and_out(page, base, password=False, passkey=True, expect_refusal=True)
    unexpected = [e for e in watched.errors if "401" not in e]
    assert unexpected == [], unexpected


def autofill(page: Any, on: bool) -> None:
    """Let the login page ask for the passkey through autofill (from its next load on)."""
    script = (
        "sessionStorage.removeItem('no-autofill')"
        if on
        else ("sessionStorage.setItem('no-autofill', '1')")
    )
    page.evaluate(script)


def _id(cdp: Any) -> str:
    return _AUTHENTICATORS[id(cdp)]

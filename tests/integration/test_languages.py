"""The gateway's pages in Dutch and English over HTTP: the order of the choice (the
account's language, then ``[ui] language``, then ``Accept-Language``, then English),
``<html lang>`` on every page, and every page a person can reach rendered in Dutch with
no English left (tests/support/languages.py): login, second factor's confirmation,
account, every admin page, a user's page, the not-found page, the guest page, the page a
VPN link opens, and the proxy's own refusal page; a service's refusal (a name or password
the rules refuse) in Dutch on an admin page and on the account page, and in English,
unchanged, from the JSON API.

One gateway for the module (``[ui] language`` left at ``auto``); a second one with
``[ui] language = "nl"`` for the one test that needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.admin import pages
from gateway.notify.runtime import home_language
from gateway.settings import load_settings
from tests.support.admin import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    AdminEnv,
    admin_gateway,
    auth_config,
    form_token,
    logged_in,
)
from tests.support.languages import english_left, html_lang

OWNER = "marieke"  # the first admin: a name that is a word in neither language
NL = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(
        tmp_path_factory.mktemp("languages"), extra=auth_config(admin=OWNER, ban_after=3)
    ) as e:
        with logged_in(e.admin_url(""), OWNER) as admin:
            for name in ("joost", "femke"):
                user = {"name": name, "password": USER_PASSWORD}
                assert admin.post("/api/users", json=user).status_code == 201
            assert admin.post("/api/tokens", json={"user": "joost", "name": "domotica"}).is_success
            guest = {"name": "Jan de loodgieter", "expires": "8h"}
            made = admin.post("/api/guests", json=guest)
            assert made.status_code == 201, made.text
            e.guest_path = urlsplit(made.json()["url"]).path  # type: ignore[attr-defined]
        login = e.config.url("/.gateway/api/login")
        for _ in range(3):  # a ban, for the bans page
            httpx.post(login, json={"username": "joost", "password": "niet goed"}, timeout=10)
        yield e


@contextmanager
def _browser(
    base_url: str, name: str, password: str, headers: dict[str, str]
) -> Iterator[httpx.Client]:
    """A client logged in through the login form, sending ``headers`` with every request."""
    with httpx.Client(base_url=base_url, timeout=15, headers=headers) as client:
        page = client.get("/.gateway/login")
        form = {
            "username": name,
            "password": password,
            "next": "/",
            "csrf_token": form_token(page.text),
        }
        assert client.post("/.gateway/login", data=form).status_code == 303
        yield client


def _set_language(client: httpx.Client, language: str) -> httpx.Response:
    account = client.get("/.gateway/account")
    form = {"language": language, "csrf_token": form_token(account.text)}
    return client.post("/.gateway/account/language", data=form)


def _title(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert found, "no heading"
    return found.group(1).strip()


def test_a_browser_gets_its_own_language_and_english_otherwise(env: AdminEnv) -> None:
    login = env.config.url("/.gateway/login")
    dutch = httpx.get(login, headers=NL, timeout=10)
    assert html_lang(dutch.text) == "nl" and _title(dutch.text) == "Inloggen"
    assert dutch.headers["content-language"] == "nl"
    assert "Accept-Language" in dutch.headers["vary"]
    for headers in (EN, {}, {"Accept-Language": "de-DE,fr;q=0.8"}):
        page = httpx.get(login, headers=headers, timeout=10)
        assert html_lang(page.text) == "en" and _title(page.text) == "Log in", headers


def test_the_accounts_choice_comes_first_and_applies_at_once(env: AdminEnv) -> None:
    with _browser(env.admin_url(""), "femke", USER_PASSWORD, EN) as client:
        assert _title(client.get("/.gateway/account").text) == "Account"
        saved = _set_language(client, "nl")
        assert saved.status_code == 200 and html_lang(saved.text) == "nl"
        assert "Taal opgeslagen." in saved.text
        assert '<option value="nl" selected>Nederlands</option>' in saved.text
        # The account's Dutch over the browser's English, on every page it opens.
        assert html_lang(client.get("/.gateway/account").text) == "nl"
        admins_only = client.get("/users")  # not an admin: the refusal, in Dutch too
        assert admins_only.status_code == 403 and html_lang(admins_only.text) == "nl"
        assert "Alleen voor beheerders" in admins_only.text
        refused = _set_language(client, "klingon")
        assert refused.status_code == 400 and "klingon" in refused.text
        assert html_lang(_set_language(client, "auto").text) == "en"  # the browser again


def test_the_first_admins_choice_is_the_homes_language(env: AdminEnv) -> None:
    """What notifications are written in (with ``[ui] language`` at ``auto``)."""
    settings = load_settings(env.config.path)
    assert home_language(settings)() == "en"
    with _browser(env.admin_url(""), OWNER, ADMIN_PASSWORD, NL) as client:
        assert _set_language(client, "nl").status_code == 200
    assert home_language(settings)() == "nl"
    with _browser(env.admin_url(""), OWNER, ADMIN_PASSWORD, NL) as client:
        assert _set_language(client, "auto").status_code == 200
    assert home_language(settings)() == "en"


@pytest.fixture(scope="module")
def dutch_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    extra = auth_config(admin=OWNER) + '[ui]\nlanguage = "nl"\n'
    with admin_gateway(tmp_path_factory.mktemp("dutch-home"), extra=extra) as e:
        yield e


def test_ui_language_over_the_browser_and_the_account_over_both(dutch_home: AdminEnv) -> None:
    login = dutch_home.config.url("/.gateway/login")
    assert html_lang(httpx.get(login, headers=EN, timeout=10).text) == "nl"
    refused = httpx.get(dutch_home.config.url("/"), headers={**EN, "Upgrade": "h2c"}, timeout=10)
    assert refused.status_code == 400 and html_lang(refused.text) == "nl"  # the proxy's page
    with _browser(dutch_home.admin_url(""), OWNER, ADMIN_PASSWORD, EN) as client:
        assert html_lang(client.get("/users").text) == "nl"
        assert html_lang(_set_language(client, "en").text) == "en"
        assert _title(client.get("/users").text) == "Users"


def _dutch_pages(env: AdminEnv) -> dict[str, httpx.Response]:
    """Every page a person can reach, fetched by a Dutch browser."""
    found: dict[str, httpx.Response] = {}
    anonymous = httpx.Client(base_url=env.config.url(""), headers=NL, timeout=10)
    with anonymous:
        found["login"] = anonymous.get("/.gateway/login")
        found["wrong password"] = anonymous.post(
            "/.gateway/login",
            data={
                "username": OWNER,
                "password": "fout",
                "next": "/",
                "csrf_token": form_token(found["login"].text),
            },
        )
        found["peer link"] = anonymous.get("/.gateway/peer/" + "x" * 43)
        found["refusal"] = anonymous.get("/", headers={"Upgrade": "h2c"})
    with _browser(env.admin_url(""), OWNER, ADMIN_PASSWORD, NL) as client:
        for path, _label in pages.NAV:
            found[path] = client.get(path)
        found["/users/joost"] = client.get("/users/joost")
        found["not found"] = client.get("/geen-pagina")
        found["account"] = client.get("/.gateway/account")
        token = form_token(found["account"].text)
        found["second factor set-up"] = client.post(
            "/.gateway/account/totp/begin", data={"csrf_token": token}
        )
        # "Confirm it is you", after a wrong password.
        found["confirm"] = client.post(
            "/.gateway/account/confirm",
            data={"password": "fout", "next": "/.gateway/account", "csrf_token": token},
        )
        found["confirmation page"] = client.post(
            "/users/joost", data={"action": "disable", "name": "joost", "csrf_token": token}
        )
    found["guest"] = httpx.get(env.config.url(env.guest_path), headers=NL, timeout=10)  # type: ignore[attr-defined]
    return found


def test_every_page_in_dutch_has_no_english_left(env: AdminEnv) -> None:
    found = _dutch_pages(env)
    assert found["refusal"].status_code == 400
    assert "Bevestig dat u het bent" in found["confirm"].text
    assert "Dat klopt niet" in found["confirm"].text
    assert "Sleutel:" in found["second factor set-up"].text
    assert "uitschakelen?" in found["confirmation page"].text
    problems = {}
    for name, response in found.items():
        page = response.text
        if html_lang(page) != "nl":
            problems[name] = [f"<html lang={html_lang(page)}>"]
        elif left := english_left(page):
            problems[name] = left
    assert problems == {}, "\n".join(f"{name}: {left}" for name, left in problems.items())


def test_a_services_refusal_is_dutch_on_pages_and_english_in_the_api(env: AdminEnv) -> None:
    with _browser(env.admin_url(""), OWNER, ADMIN_PASSWORD, NL) as client:
        users_page = client.get("/users")
        form = {
            "action": "add",
            "name": "-nee",
            "role": "user",
            "password": "lang genoeg wachtwoord",
            "csrf_token": form_token(users_page.text),
        }
        refused = client.post("/users", data=form)
        assert refused.status_code == 400 and html_lang(refused.text) == "nl"
        assert "gebruikersnaam &#39;-nee&#39; is niet toegestaan" in refused.text
        assert english_left(refused.text, data=("-nee",)) == []
    # The JSON API answers the same refusal in English, word for word, whatever the
    # browser prefers: scripts read it.
    with logged_in(env.admin_url(""), OWNER) as admin:
        wanted = {"name": "joost", "role": "user", "password": "lang genoeg wachtwoord"}
        api = admin.post("/api/users", json=wanted, headers=NL)
        assert api.status_code == 409 and api.json()["detail"] == "there is already a user 'joost'"
    with _browser(env.admin_url(""), "femke", USER_PASSWORD, NL) as client:
        account = client.get("/.gateway/account")
        assert html_lang(account.text) == "nl"
        changed = client.post(
            "/.gateway/account/password",
            data={
                "current_password": USER_PASSWORD,
                "new_password": "kort",
                "new_password_again": "kort",
                "csrf_token": form_token(account.text),
            },
        )
        assert changed.status_code == 400 and html_lang(changed.text) == "nl"
        assert "het wachtwoord is te kort: 4 tekens" in changed.text
        assert english_left(changed.text) == []


def test_the_login_apis_error_codes_are_the_same_in_every_language(
    env: AdminEnv, dutch_home: AdminEnv
) -> None:
    """Scripts read ``error``: a Dutch reader (the browser's or the home's language) gets
    the same codes as anyone, never ones made of a translated sentence."""
    wrong = {"username": "onbekend", "password": "niet het wachtwoord"}
    for home, headers in ((env, NL), (dutch_home, EN), (env, EN)):
        refused = httpx.post(
            home.config.url("/.gateway/api/login"), json=wrong, headers=headers, timeout=10
        )
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"error": "wrong_user_name_or_password"}
    # joost is banned (the module's three wrong passwords): the gate answers, in no language.
    banned = {"username": "joost", "password": USER_PASSWORD}
    gate = httpx.post(env.config.url("/.gateway/api/login"), json=banned, headers=NL, timeout=10)
    assert gate.status_code == 429, gate.text
    assert gate.json() == {"error": "too_many_failed_attempts"}

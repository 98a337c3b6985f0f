"""Which language applies (gateway/i18n.py), per request and per notification: the order
of the choice, Accept-Language negotiation, isolation between concurrent requests, the
``[ui] language`` setting, the account's choice, the home's language, and the proxy's
error pages and the notifications in Dutch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway import i18n
from gateway.notify.delivery import Notifier
from gateway.notify.message import Message, Notice, compose
from gateway.notify.runtime import home_language
from gateway.proxy.errorpages import ErrorPages
from gateway.services import languages, users
from gateway.services.errors import Invalid
from gateway.settings import Settings
from gateway.store import db
from gateway.web.i18n import templates
from tests.unit.test_notify import wait_for

# account, [ui] language, Accept-Language -> the page's language
CHOICES = [
    (None, "auto", None, "en"),  # nothing known: English
    (None, "auto", "nl-NL,nl;q=0.9,en;q=0.8", "nl"),  # the browser's
    (None, "auto", "nl-BE", "nl"),  # a region of an available language
    (None, "auto", "de-DE,de;q=0.9", "en"),  # nothing available: English
    (None, "auto", "de, nl;q=0.5, en;q=0.4", "nl"),  # the most wanted available one
    (None, "auto", "en;q=0.9, nl", "nl"),  # weights, not order
    (None, "auto", "nl;q=0, en", "en"),  # q=0: not wanted
    (None, "auto", "*", "en"),
    (None, "nl", "en-US", "nl"),  # [ui] language over the browser
    (None, "en", "nl", "en"),
    ("auto", "nl", "en", "nl"),  # an account that left it to the rest
    ("en", "nl", "nl", "en"),  # the account over everything
    ("nl", "auto", "en", "nl"),
    ("nl", "en", None, "nl"),
    ("fr", "auto", "nl", "nl"),  # a choice without a catalog (removed since): no choice
]


@pytest.mark.parametrize(("account", "configured", "accept", "expected"), CHOICES)
def test_the_choice_of_language(
    account: str | None, configured: str, accept: str | None, expected: str
) -> None:
    chosen = i18n.choose(account=account, configured=configured, accept_language=accept)
    assert chosen == expected


def test_the_homes_language() -> None:
    assert i18n.home_language(configured="auto", first_admin=None) == "en"
    assert i18n.home_language(configured="auto", first_admin="nl") == "nl"
    assert i18n.home_language(configured="en", first_admin="nl") == "en"
    assert i18n.home_language(configured="nl", first_admin=None) == "nl"


def test_outside_a_request_it_is_english_and_inside_the_chosen_language() -> None:
    assert i18n.current_language() == "en"
    assert i18n.gettext("Log in") == "Log in"
    with i18n.use_language("nl"):
        assert i18n.gettext("Log in") == "Inloggen"
        assert i18n.ngettext("%(count)d day", "%(count)d days", 3) % {"count": 3} == "3 dagen"
    with i18n.use_language("xx"):  # no catalog: English
        assert i18n.current_language() == "en"
    assert i18n.gettext("Log in") == "Log in"


def test_concurrent_requests_keep_their_own_language() -> None:
    """A context variable, not a process-wide switch: two requests interleaved in one
    event loop each render in their own language."""
    page = templates(Path(__file__).parent).env.from_string(
        '<html lang="{{ language() }}">{% trans %}Log in{% endtrans %}</html>'
    )

    async def request(language: str, started: asyncio.Event, other: asyncio.Event) -> str:
        with i18n.use_language(language):
            started.set()
            await other.wait()  # the other request switches its language meanwhile
            return page.render()

    async def both() -> tuple[str, str]:
        a, b = asyncio.Event(), asyncio.Event()
        return await asyncio.gather(request("nl", a, b), request("en", b, a))  # type: ignore[return-value]

    dutch, english = asyncio.run(both())
    assert dutch == '<html lang="nl">Inloggen</html>'
    assert english == '<html lang="en">Log in</html>'


def test_ui_language_setting_is_validated_against_the_catalogs() -> None:
    assert Settings().ui.language == "auto"
    assert Settings(ui={"language": "NL"}).ui.language == "nl"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the choices are: auto, en, nl"):
        Settings(ui={"language": "de"})  # type: ignore[arg-type]


def test_an_accounts_choice_and_the_first_admins(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "gateway.db")
    first = users.add_user(conn, "anna", role="admin", password="a long passphrase", actor="t")
    later = users.add_user(conn, "bram", role="admin", password="a long passphrase", actor="t")
    assert languages.language_of(conn, first.id) == "auto"
    assert languages.first_admin_language(conn) is None
    languages.set_language(conn, later.id, "nl")
    assert languages.first_admin_language(conn) is None  # bram is not the first admin
    assert languages.set_language(conn, first.id, " NL ") == "nl"
    assert languages.first_admin_language(conn) == "nl"
    with pytest.raises(Invalid, match="choose auto, en, nl"):
        languages.set_language(conn, first.id, "klingon")
    assert languages.language_of(conn, 999) is None
    events = [r["event"] for r in conn.execute("SELECT event FROM audit_log")]
    assert events.count("user.language") == 2


def test_notifications_use_the_homes_language(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert home_language(settings)() == "en"  # no database yet
    conn = db.connect(settings.database_path)
    admin = users.add_user(conn, "anna", role="admin", password="a long passphrase", actor="t")
    assert home_language(settings)() == "en"
    languages.set_language(conn, admin.id, "nl")
    assert home_language(settings)() == "nl"  # read again each time
    fixed = Settings(data_dir=tmp_path, ui={"language": "en"})  # type: ignore[arg-type]
    assert home_language(fixed)() == "en"


def test_every_notification_has_a_dutch_message() -> None:
    for name in (*compose.__globals__["EVENTS"], "notify.test"):
        english = compose(Notice(name, 0.0), link=str)
        dutch = compose(Notice(name, 0.0), link=str, language="nl")
        assert dutch.title != english.title, name
        assert dutch.body.splitlines()[0] != english.body.splitlines()[0], name


def test_a_notification_in_dutch_through_the_notifier() -> None:
    received: list[Message] = []

    def receiver(message: Message) -> bool:
        received.append(message)
        return True

    notifier = Notifier(receiver, link=lambda path: f"https://gw:8443{path}", language=lambda: "nl")
    notifier.start()
    try:
        notice = Notice("user.add", 0.0, "anna", "192.0.2.7", {"user": "bram", "role": "viewer"})
        notifier.notify(notice)
        wait_for(lambda: received)
    finally:
        notifier.stop()
    message = received[0]
    assert message.title == "Nieuwe gebruiker"
    assert "anna heeft de gebruiker bram (viewer) toegevoegd." in message.body
    assert "Vanaf: 192.0.2.7" in message.body
    assert message.body.endswith("https://gw:8443/users")


def test_the_proxys_error_pages_speak_the_readers_language() -> None:
    pages = ErrorPages()
    dutch = pages.body(403, accept_language="nl-NL,nl;q=0.9").decode()
    assert "<html lang=nl>" in dutch and "Geen toegang" in dutch
    english = pages.body(403, accept_language="en-GB").decode()
    assert "<html lang=en>" in english and "Access denied" in english
    assert "Access denied" in pages.body(403).decode()
    fixed = ErrorPages(language="nl")  # [ui] language over the browser's
    assert "De CEMM antwoordt niet" in fixed.body(502, accept_language="en").decode()
    assert "De CEMM antwoordt niet" in fixed.raw_response(502).decode()


def test_pages_the_http_test_cannot_reach_are_dutch_too() -> None:
    """The page a VPN peer link opens (WireGuard is off in the HTTP tests) and the second
    step of logging in, rendered in Dutch: no English left."""
    from gateway.portal.pages import templates as portal_templates
    from tests.support.languages import english_left, html_lang

    pages = {
        "peer_config.html": {
            "name": "telefoon-anna",
            "config": "[Interface]\nPrivateKey = x\n",
            "qr_svg": "<svg></svg>",
            "download": "data:text/plain,x",
            "filename": "telefoon-anna.conf",
        },
        "login_totp.html": {"challenge": "c", "csrf_token": "t", "next": "/", "retry_after": 3},
    }
    with i18n.use_language("nl"):
        for name, context in pages.items():
            page = portal_templates.get_template(name).render(**context)
            assert html_lang(page) == "nl", name
            assert english_left(page) == [], name

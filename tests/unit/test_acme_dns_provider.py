"""``[acme.dns]``, DNS-01 through a provider's API (dns-lexicon), without a DNS server:
the section's free-form provider options (file and environment), the cross-key rules
``cemm-gateway check`` applies, secrets read from files and kept out of messages, and the
zone lookup staying offline (the bundled Public Suffix List, no download)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.acme import dns_provider
from gateway.acme.dns_provider import problems, provider_hook, resolve_options, zone_of
from gateway.acme.errors import AcmeError
from gateway.settings import Settings, SettingsError, check_acme, load_settings
from gateway.settings.acme import AcmeDnsSettings

DNS01 = {"enabled": True, "domains": ["cemm.example.org"], "challenge": "dns-01"}


def settings(acme: dict[str, Any]) -> Settings:
    return Settings(upstream={"host": "192.168.2.34"}, tls={"enabled": True}, acme=acme)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[object]]:
    """Any connection or name lookup fails the test; tldextract's caches start empty."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"a network access: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TLDEXTRACT_CACHE_PATH", str(tmp_path / "lexicon-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", raising=False)
    yield attempts
    assert attempts == []


def test_the_section_takes_the_providers_options_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[upstream]\nhost = "192.168.2.34"\n'
        '[acme.dns]\nprovider = "powerdns"\npdns_server = "http://127.0.0.1:8081"\n'
        'auth_token = "s3cret-token"\nttl = 60\npropagation_seconds = 5\n'
    )
    dns = load_settings(config).acme.dns
    assert dns.provider == "powerdns"
    assert dns.propagation_seconds == 5
    assert dns.options == {
        "pdns_server": "http://127.0.0.1:8081",
        "auth_token": "s3cret-token",
        "ttl": 60,
    }
    # Options are often secrets: their names show, never their values.
    assert "s3cret-token" not in repr(dns)
    assert "s3cret-token" not in repr(load_settings(config))
    assert "auth_token" in repr(dns)


def test_the_environment_sets_provider_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_UPSTREAM__HOST", "192.168.2.34")
    monkeypatch.setenv("CEMM_GATEWAY_ACME__DNS__PROVIDER", "desec")
    monkeypatch.setenv("CEMM_GATEWAY_ACME__DNS__AUTH_TOKEN_FILE", "/run/secrets/desec")
    dns = load_settings().acme.dns
    assert dns.provider == "desec"
    assert dns.options == {"auth_token_file": "/run/secrets/desec"}
    # A variable that names no section is still refused.
    monkeypatch.setenv("CEMM_GATEWAY_ACME__DNZ__AUTH_TOKEN", "x")
    with pytest.raises(SettingsError, match="CEMM_GATEWAY_ACME__DNZ__AUTH_TOKEN: not a setting"):
        load_settings()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"Auth-Token": "x"}, "lower case with underscores"),
        ({"auth_token": ["a", "b"]}, "a string or a number"),
        ({"auth_token": {"a": "b"}}, "a string or a number"),
        ({"auth_token": True}, "a string or a number"),
    ],
)
def test_option_values_are_plain(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AcmeDnsSettings(provider="powerdns", **options)


GOOD_PDNS = {"provider": "powerdns", "pdns_server": "http://127.0.0.1:8081", "auth_token": "t"}


@pytest.mark.parametrize(
    ("acme", "message"),
    [
        (
            {**DNS01, "dns_hook": "/data/hook", "dns": GOOD_PDNS},
            r"dns_hook and \[acme.dns\] provider both publish",
        ),
        (DNS01, r"needs dns_hook, .* or \[acme.dns\] provider"),
        ({**DNS01, "dns": {"auth_token": "t"}}, r"\[acme.dns\] auth_token without a provider"),
        (
            {**DNS01, "challenge": "http-01", "dns": GOOD_PDNS},
            r'provider is for challenge = "dns-01"',
        ),
        (
            {**DNS01, "dns": {"provider": "qqqq"}},
            r"'qqqq' is not a provider dns-lexicon knows; the providers are: .*powerdns",
        ),
        (
            {**DNS01, "dns": {"provider": "powerdsn"}},
            r"'powerdsn' is not a provider dns-lexicon knows; did you mean powerdns\?",
        ),
        (
            {**DNS01, "dns": {"provider": "auto"}},
            r"'auto' is not a provider dns-lexicon knows",
        ),
        (
            {**DNS01, "dns": {**GOOD_PDNS, "auth_tokn": "t"}},
            r"auth_tokn: not an option of the powerdns provider; its options are: "
            r".*auth_token.*pdns_server",
        ),
        (
            {**DNS01, "dns": {**GOOD_PDNS, "auth_token_file": "/run/secrets/pdns"}},
            "auth_token and auth_token_file both give auth_token",
        ),
    ],
)
def test_check_refuses_inconsistent_dns_settings(acme: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_acme(settings(acme))


def test_a_provider_whose_extra_packages_are_missing_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As lexicon reports route53 without boto3, say.
    monkeypatch.setattr(dns_provider, "providers", lambda: {"route53": False})
    with pytest.raises(SettingsError, match="needs Python packages the gateway does not ship"):
        check_acme(settings({**DNS01, "dns": {"provider": "route53"}}))


@pytest.mark.parametrize(
    "dns",
    [
        GOOD_PDNS,
        {"provider": "powerdns", "pdns_server": "http://h", "auth_token_file": "/f", "ttl": 60},
        {"provider": "desec", "auth_token_file": "/run/secrets/desec"},
        {"provider": "duckdns", "auth_token": "t", "delegated": "cemm.duckdns.org"},
        {"provider": "cloudflare", "auth_token": "t"},
    ],
)
def test_check_accepts_a_providers_own_options(dns: dict[str, Any]) -> None:
    check_acme(settings({**DNS01, "dns": dns}))
    assert problems(AcmeDnsSettings(**dns)) == []


def test_secrets_come_from_files_and_are_marked(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  file-secret-value\n")
    options, secrets = resolve_options(
        AcmeDnsSettings(
            provider="powerdns",
            pdns_server="http://127.0.0.1:8081",
            auth_token_file=str(token),
            ttl=60,
        )
    )
    assert options == {
        "pdns_server": "http://127.0.0.1:8081",
        "auth_token": "file-secret-value",
        "ttl": 60,
    }
    assert secrets == ["file-secret-value"]
    _, secrets = resolve_options(AcmeDnsSettings(**GOOD_PDNS | {"auth_token": "inline-token"}))
    assert secrets == ["inline-token"]


def test_an_unreadable_secret_file_is_an_acme_error(tmp_path: Path) -> None:
    dns = AcmeDnsSettings(provider="powerdns", auth_token_file=str(tmp_path / "missing"))
    with pytest.raises(AcmeError, match=r"\[acme.dns\] auth_token_file: cannot read .*missing"):
        provider_hook(dns)


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("_acme-challenge.cemm.example.org", "example.org"),
        ("cemm.example.co.uk", "example.co.uk"),
        ("cemm.duckdns.org", "cemm.duckdns.org"),  # a private suffix: the name is the zone
        ("_acme-challenge.home.dedyn.io", "home.dedyn.io"),
    ],
)
def test_the_zone_comes_from_the_bundled_list(
    name: str, zone: str, no_network: list[object]
) -> None:
    assert zone_of(name) == zone


def test_lexicon_finds_the_zone_without_the_network(no_network: list[object]) -> None:
    from lexicon.client import Client
    from lexicon.config import ConfigResolver

    dns_provider._offline()
    config = ConfigResolver().with_dict(
        {
            "provider_name": "powerdns",
            "domain": "cemm.example.co.uk",
            "powerdns": {"pdns_server": "http://127.0.0.1:1", "auth_token": "t"},
        }
    )
    client = Client(config)
    assert client.config.resolve("lexicon:domain") == "example.co.uk"


def test_provider_errors_leave_the_secret_out(
    monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    class Failing:
        def __init__(self, config: object) -> None:
            pass

        def __enter__(self) -> Failing:
            raise RuntimeError("401 for url: https://dns.example/update?token=s3cret-token")

        def __exit__(self, *exc: object) -> None:
            return None

    import lexicon.client

    monkeypatch.setattr(lexicon.client, "Client", Failing)
    hook = provider_hook(AcmeDnsSettings(provider="duckdns", auth_token="s3cret-token"))
    with pytest.raises(AcmeError) as raised:
        hook("add", "_acme-challenge.cemm.duckdns.org", "value")
    message = str(raised.value)
    assert message.startswith(
        "the DNS provider duckdns failed to add the TXT record _acme-challenge.cemm.duckdns.org "
        "in the zone cemm.duckdns.org: RuntimeError: 401"
    )
    assert "s3cret-token" not in message and "[redacted]" in message

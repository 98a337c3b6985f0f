"""DNS-01 through a DNS provider's API: ``[acme.dns]``, driven by ``dns-lexicon``.

:func:`provider_hook` gives the same ``hook(action, name, value)`` as ``[acme] dns_hook``
(``add``/``remove``, ``_acme-challenge.<domain>``, the TXT value), so the order does not
care which one publishes the record. Each call opens lexicon's client for the domain,
which authenticates with the provider, and creates or deletes the one TXT record.

Nothing is downloaded at run time. Lexicon finds the zone of a name with ``tldextract``,
which by default fetches the Public Suffix List from the internet on first use; the
environment variable ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS`` set to nothing makes every
``TLDExtract`` (lexicon's included, which names no URLs of its own) use the snapshot that
ships inside the package. :func:`zone_of` shows which zone that is. A zone below the
registrable domain (a delegated ``_acme-challenge`` or sub-zone) is lexicon's own option
``delegated``.

The provider's options are checked against what the library says the provider takes
(:func:`problems`, asked by ``cemm-gateway check``); ``<option>_file`` is read at each
order, so a rotated secret needs no restart. Error messages from the library may quote a
request URL or a body: the values of secret options are cut out of them.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
from functools import cache
from pathlib import Path

from gateway.acme.errors import AcmeError, Hook
from gateway.settings.acme import AcmeDnsSettings

logger = logging.getLogger("cemm_gateway.acme")

# Lexicon's own options (not a provider's) that make sense here: the records' TTL, and the
# zone when it is not the registrable domain.
LEXICON_OPTIONS = frozenset({"ttl", "delegated"})
FILE_SUFFIX = "_file"
# Options whose values never appear in a message: what providers call their credentials.
_SECRET_WORDS = ("auth", "token", "secret", "key", "password", "pass")


def _offline() -> None:
    """The bundled Public Suffix List only (see the module's docstring)."""
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""


@cache
def providers() -> dict[str, bool]:
    """Every provider lexicon has, and whether its extra packages are installed."""
    # Lexicon's discovery is the one place that knows; its CLI and Client use it too.
    from lexicon._private.discovery import find_providers

    # "auto" guesses the provider from the zone's name servers (lookups at run time, and
    # options no check can know): name the provider instead.
    return {name: ready for name, ready in find_providers().items() if name != "auto"}


@cache
def provider_options(provider: str) -> frozenset[str]:
    """The options ``provider`` takes, as lexicon spells them (``auth_token``)."""
    from lexicon._private.discovery import load_provider_module

    parser = argparse.ArgumentParser(add_help=False)
    load_provider_module(provider).Provider.configure_parser(parser)
    # Some providers read an option by its dashed name (``pdns-disable-notify``).
    dests = {action.dest for action in parser._actions}
    return frozenset(dests | {dest.replace("_", "-") for dest in dests})


def problems(dns: AcmeDnsSettings) -> list[str]:
    """What is wrong with ``[acme.dns]`` for its provider, each in plain words; [] if fine."""
    found = providers()
    if dns.provider not in found:
        ready = sorted(name for name, usable in found.items() if usable)
        close = difflib.get_close_matches(dns.provider, ready, n=1)
        hint = f"did you mean {close[0]}?" if close else f"the providers are: {', '.join(ready)}"
        return [
            f"[acme.dns] provider = {dns.provider!r} is not a provider dns-lexicon knows; {hint}"
        ]
    if not found[dns.provider]:
        return [
            f"[acme.dns] provider = {dns.provider!r} needs Python packages the gateway does "
            "not ship (dns-lexicon's extra of that name); use another provider or dns_hook"
        ]
    known = provider_options(dns.provider) | LEXICON_OPTIONS
    lines = []
    for name in dns.options:
        option = name.removesuffix(FILE_SUFFIX) if name not in known else name
        if option not in known:
            lines.append(
                f"[acme.dns] {name}: not an option of the {dns.provider} provider; its "
                f"options are: {', '.join(sorted(o for o in known if '-' not in o))}"
            )
        elif option != name and option in dns.options:
            lines.append(f"[acme.dns] {option} and {name} both give {option}; keep one of them")
    return lines


def is_secret(option: str) -> bool:
    return any(word in option for word in _SECRET_WORDS)


def resolve_options(dns: AcmeDnsSettings) -> tuple[dict[str, str | int | float], list[str]]:
    """The options with every ``<option>_file`` read, and the values to keep out of messages."""
    known = provider_options(dns.provider) | LEXICON_OPTIONS
    options: dict[str, str | int | float] = {}
    secrets: list[str] = []
    for name, value in dns.options.items():
        if name.endswith(FILE_SUFFIX) and name not in known:
            option = name.removesuffix(FILE_SUFFIX)
            try:
                value = Path(str(value)).read_text().strip()
            except OSError as error:
                raise AcmeError(
                    f"[acme.dns] {name}: cannot read {value}: {error.strerror}"
                ) from None
            secrets.append(value)
        else:
            option = name
            if is_secret(name) and isinstance(value, str):
                secrets.append(value)
        options[option] = value
    return options, [secret for secret in secrets if len(secret) >= 4]


def zone_of(name: str) -> str:
    """The zone lexicon takes ``name`` to be in: its registrable domain by the bundled
    Public Suffix List, private suffixes included (``cemm.duckdns.org``)."""
    import tldextract

    extract = tldextract.TLDExtract(
        cache_dir=None, suffix_list_urls=(), include_psl_private_domains=True
    )
    parts = extract(name)
    return f"{parts.domain}.{parts.suffix}" if parts.suffix else parts.domain


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def provider_hook(dns: AcmeDnsSettings) -> Hook:
    """``hook(action, name, value)`` publishing through the provider's API (see above)."""
    options, secrets = resolve_options(dns)
    _offline()
    from lexicon.client import Client
    from lexicon.config import ConfigResolver

    own = {name: value for name, value in options.items() if name in LEXICON_OPTIONS}
    theirs = {name: value for name, value in options.items() if name not in LEXICON_OPTIONS}

    def hook(action: str, name: str, value: str) -> None:
        domain = name.removeprefix("_acme-challenge.")
        config = ConfigResolver().with_dict(
            {"provider_name": dns.provider, "domain": domain, **own, dns.provider: theirs}
        )
        try:
            with Client(config) as operations:
                if action == "add":
                    done = operations.create_record("TXT", name, value)
                else:
                    done = operations.delete_record(None, "TXT", name, value)
        except Exception as error:  # the providers raise anything, from HTTP to KeyError
            reason = _redact(f"{type(error).__name__}: {error}", secrets)
            zone = str(own.get("delegated") or zone_of(domain))
            raise AcmeError(
                f"the DNS provider {dns.provider} failed to {action} the TXT record {name} "
                f"in the zone {zone}: {reason}"
            ) from None
        if not done:
            raise AcmeError(
                f"the DNS provider {dns.provider} did not {action} the TXT record {name}"
            )
        logger.info("DNS provider %s: %s TXT %s", dns.provider, action, name)

    return hook

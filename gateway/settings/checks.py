"""Rules across settings, checked before the gateway starts (and by ``cemm-gateway
check``): what one key needs of another, which a single field's validator cannot see."""

from __future__ import annotations

from gateway.settings.model import Settings, SettingsError


def check_tls(settings: Settings) -> None:
    """A certificate needs its key and the other way round."""
    tls = settings.tls
    if bool(tls.cert) != bool(tls.key):
        raise SettingsError(
            "invalid configuration: [tls] cert and key go together; give both paths, or "
            'neither for a self-signed certificate. example: cert = "/data/tls/fullchain.pem", '
            'key = "/data/tls/privkey.pem"'
        )


def check_acme(settings: Settings) -> None:
    """ACME needs TLS on, replaces the owner's certificate, and needs names to order."""
    acme, tls = settings.acme, settings.tls
    if not acme.enabled:
        return
    if not tls.enabled:
        raise SettingsError(
            "invalid configuration: [acme] enabled = true needs [tls] enabled = true; the "
            "certificate it orders is served over HTTPS"
        )
    if tls.cert or tls.key:
        raise SettingsError(
            "invalid configuration: [acme] and [tls] cert/key both give the certificate; "
            "remove [tls] cert and key to use ACME, or set [acme] enabled = false"
        )
    if not acme.domains:
        raise SettingsError(
            "invalid configuration: [acme] enabled = true needs domains; example: domains = "
            '["cemm.example.org"]'
        )
    if acme.challenge == "http-01" and any(name.startswith("*.") for name in acme.domains):
        raise SettingsError(
            'invalid configuration: [acme] domains: a wildcard name needs challenge = "dns-01"'
        )
    check_acme_dns(settings)


def check_acme_dns(settings: Settings) -> None:
    """DNS-01 publishes its records one way: the hook, or a provider's API."""
    acme = settings.acme
    dns = acme.dns
    if dns.provider and acme.dns_hook:
        raise SettingsError(
            "invalid configuration: [acme] dns_hook and [acme.dns] provider both publish the "
            "TXT record; keep one of them"
        )
    if dns.options and not dns.provider:
        raise SettingsError(
            f"invalid configuration: [acme.dns] {', '.join(sorted(dns.options))} without a "
            'provider; example: provider = "powerdns"'
        )
    if dns.provider and acme.challenge != "dns-01":
        raise SettingsError(
            'invalid configuration: [acme.dns] provider is for challenge = "dns-01"; set '
            '[acme] challenge = "dns-01", or remove [acme.dns]'
        )
    if acme.challenge == "dns-01" and not (acme.dns_hook or dns.provider):
        raise SettingsError(
            'invalid configuration: [acme] challenge = "dns-01" needs dns_hook, the program '
            'that publishes the TXT record (example: dns_hook = "/data/acme-hook.sh"), or '
            '[acme.dns] provider, a DNS provider\'s API (example: provider = "desec")'
        )
    if dns.provider:
        # The library is imported only when a provider is configured.
        from gateway.acme.dns_provider import problems

        if found := problems(dns):
            raise SettingsError("invalid configuration: " + "; ".join(found))


def check_wireguard(settings: Settings) -> None:
    wireguard = settings.wireguard
    if wireguard.enabled and not wireguard.endpoint:
        raise SettingsError(
            "invalid configuration: [wireguard] enabled = true needs endpoint, the address "
            'phones dial; example: [wireguard] endpoint = "home.example.org:51820"'
        )


def check_oidc(settings: Settings) -> None:
    """OIDC, when enabled, needs its provider and client; say which key is missing."""
    oidc = settings.oidc
    if not oidc.enabled:
        return
    missing = [
        key
        for key, value in (
            ("discovery_url", oidc.discovery_url),
            ("client_id", oidc.client_id),
            ("client_secret or client_secret_file", oidc.client_secret or oidc.client_secret_file),
            ("redirect_uri", oidc.redirect_uri),
        )
        if not value
    ]
    if missing:
        raise SettingsError(
            f"invalid configuration: [oidc] enabled = true needs {', '.join(missing)}; example: "
            '[oidc] discovery_url = "https://sso.example.org/.well-known/openid-configuration"'
        )


def require_upstream(settings: Settings) -> None:
    """Refuse to run a gateway that does not know where, or which, the CEMM is."""
    upstream = settings.upstream
    if not upstream.host and not upstream.mac:
        raise SettingsError(
            "invalid configuration: upstream.host is not set, nor upstream.mac; the "
            "gateway needs the CEMM's address or its MAC. example: "
            '[upstream] host = "192.168.2.34" (or CEMM_GATEWAY_UPSTREAM__HOST=192.168.2.34), or '
            '[upstream] mac = "80:1F:12:47:06:B0" to follow the CEMM across DHCP changes '
            "(the MAC is shown in the CEMM under Instellingen > Systeem)"
        )
    if upstream.probe_subnet and not upstream.mac:
        raise SettingsError(
            "invalid configuration: upstream.probe_subnet is only used to find the CEMM by "
            'its MAC; set [upstream] mac = "80:1F:12:47:06:B0" as well, or remove probe_subnet'
        )


def check_startup(settings: Settings) -> None:
    """Every rule across keys that the gateway checks before it starts, in that order.

    Raises :class:`SettingsError` for the first one broken; the message names the key.
    """
    require_upstream(settings)
    check_oidc(settings)
    check_tls(settings)
    check_acme(settings)
    check_wireguard(settings)

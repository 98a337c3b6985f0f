"""Which allowlist entries are dangerous enough to need an explicit confirmation.

An allowlist entry decides who may connect at all; a login is then all that stands
between that network and the CEMM. An entry is *wide* - accepted only once the person
adding it confirmed, having been told what it means - when it is:

- ``0.0.0.0/0`` or ``::/0`` (any prefix length 0): every address of that family, the
  whole internet;
- a public network wider than /16 (prefix length below 16, either family): more
  addresses than any home or office, owned by strangers. "Public" is Python's
  ``is_global``: a network with global addresses in it (``8.0.0.0/8``, ``2000::/3``,
  ``172.0.0.0/8``); private and special ranges (``10.0.0.0/8``, ``fc00::/7``,
  ``100.64.0.0/10``) are not.

A /16 itself, any narrower network and every single address are not wide.
:func:`wide_network_warning` answers over plain data; the service
(:func:`gateway.services.allowlist.save_entry`) asks it, and the three edges (admin page,
JSON API, CLI) only carry the person's confirmation to it.
"""

from __future__ import annotations

import ipaddress

from gateway.i18n import N_, Message
from gateway.policy.allowlist import AllowlistNetwork

#: Public networks with a shorter prefix than this need a confirmation.
WIDEST_WITHOUT_CONFIRMATION = 16


def _ip_network(network: AllowlistNetwork) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if network.version == 4:
        return ipaddress.IPv4Network((network.first, network.prefix_length))
    return ipaddress.IPv6Network((network.first, network.prefix_length))


def is_wide(network: AllowlistNetwork) -> bool:
    """Whether ``network`` needs a confirmation (the module's docstring has the rule)."""
    if network.prefix_length == 0:
        return True
    return network.prefix_length < WIDEST_WITHOUT_CONFIRMATION and _ip_network(network).is_global


def wide_network_message(network: AllowlistNetwork) -> Message | None:
    """What allowing ``network`` means, as a sentence to show in the reader's language,
    when it is wide; None otherwise."""
    if not is_wide(network):
        return None
    if network.prefix_length == 0:
        return Message(
            N_(
                "{network} is every IPv{version} address: anyone on the internet who can "
                "reach the gateway could connect to it and try to log in; only a password "
                "(and second factor) would stand between them and the CEMM"
            ),
            network=str(network),
            version=network.version,
        )
    count = 1 << ((32 if network.version == 4 else 128) - network.prefix_length)
    amount = f"{count:,}" if network.version == 4 else f"2^{count.bit_length() - 1}"
    return Message(
        N_(
            "{network} is a public network of {amount} addresses, wider than /{widest}: "
            "anyone in it who can reach the gateway could connect to it and try to log in; "
            "only a password (and second factor) would stand between them and the CEMM"
        ),
        network=str(network),
        amount=amount,
        widest=WIDEST_WITHOUT_CONFIRMATION,
    )


def wide_network_warning(network: AllowlistNetwork) -> str | None:
    """What allowing ``network`` means, as an English sentence, when it is wide; None
    otherwise."""
    message = wide_network_message(network)
    return None if message is None else str(message)

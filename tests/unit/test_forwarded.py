"""Tests of trusted-proxy client resolution (gateway/policy/forwarded.py), a rule per test."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy.allowlist import CompiledAllowlist, decide_connection
from gateway.policy.forwarded import MAX_HOPS, ForwardedResult, resolve_client

TRUSTED = CompiledAllowlist.from_networks(["10.0.0.0/24", "2001:db8:100::/48"])
PROXY = "10.0.0.1"  # the TCP peer when the request comes through the trusted proxy
OTHER_PROXY = "10.0.0.2"
V6_PROXY = "2001:db8:100::2"
STRANGER = "203.0.113.66"  # a peer that is not a trusted proxy
LAN_CLIENT = "192.168.1.5"
REMOTE_CLIENT = "198.51.100.7"


def resolve(peer: str = PROXY, **headers: str | list[str]) -> ForwardedResult:
    return resolve_client(peer, TRUSTED, **headers)


def not_an_address(entry: str) -> str:
    return (
        f"X-Forwarded-For entry {entry!r} is not an IP address (ports and brackets are not allowed)"
    )


def proxied(client: str, proto: str | None = None, host: str | None = None) -> ForwardedResult:
    return ForwardedResult(client=client, via_proxy=True, proto=proto, host=host)


# --- 1. untrusted peer: headers ignored --------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"x_forwarded_for": LAN_CLIENT},
        {"forwarded": f"for={LAN_CLIENT}"},
        {"x_forwarded_for": "garbage,,"},  # malformed, but ignored: no error for a stranger
        {"forwarded": "for=_hidden"},
        {"x_forwarded_proto": "https"},
        {"x_forwarded_host": "evil.example"},
    ],
)
def test_untrusted_peer_headers_are_ignored(headers: dict[str, str]) -> None:
    assert resolve(STRANGER, **headers) == ForwardedResult(client=STRANGER, headers_ignored=True)


def test_untrusted_peer_without_headers() -> None:
    assert resolve(STRANGER) == ForwardedResult(client=STRANGER)


def test_spoofed_allowlisted_address_from_a_denied_host_is_still_denied() -> None:
    lan_only = CompiledAllowlist.from_networks(["192.168.0.0/16"])
    result = resolve(STRANGER, x_forwarded_for=LAN_CLIENT, forwarded=f"for={LAN_CLIENT}")
    assert result.client == STRANGER
    assert not decide_connection(result.client, lan_only).allowed


def test_untrusted_peer_that_is_no_address_is_returned_as_given() -> None:
    assert resolve("not-an-ip", x_forwarded_for=LAN_CLIENT) == ForwardedResult(
        client="not-an-ip", headers_ignored=True
    )


def test_peer_is_given_in_canonical_form() -> None:
    assert resolve("::ffff:203.0.113.66").client == STRANGER
    assert resolve("fe80::1%eth0").client == "fe80::1"
    assert resolve("2001:DB8:0::1").client == "2001:db8::1"


# --- 2. trusted peer without a chain -----------------------------------------------------


def test_trusted_peer_without_forwarding_headers_is_the_client() -> None:
    assert resolve(PROXY) == ForwardedResult(client=PROXY)


def test_proto_and_host_without_a_chain_are_ignored() -> None:
    assert resolve(PROXY, x_forwarded_proto="https", x_forwarded_host="a.example") == (
        ForwardedResult(client=PROXY)
    )


def test_mapped_trusted_peer_is_trusted() -> None:
    assert resolve("::ffff:10.0.0.1", x_forwarded_for=LAN_CLIENT) == proxied(LAN_CLIENT)


# --- 3. walking the chain ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_forwarded_for", "client"),
    [
        (LAN_CLIENT, LAN_CLIENT),
        (f"{REMOTE_CLIENT}, {LAN_CLIENT}", LAN_CLIENT),  # rightmost untrusted, not leftmost
        (f"{LAN_CLIENT}, {OTHER_PROXY}", LAN_CLIENT),  # trusted hops are skipped
        (f"{REMOTE_CLIENT}, {LAN_CLIENT}, {OTHER_PROXY}, {V6_PROXY}", LAN_CLIENT),
        (f"{OTHER_PROXY}, {PROXY}", OTHER_PROXY),  # all trusted: the leftmost
        (f"{LAN_CLIENT},{OTHER_PROXY}", LAN_CLIENT),  # no space
        (f"\t{LAN_CLIENT} ,  {OTHER_PROXY}\t", LAN_CLIENT),  # optional whitespace
        ("2001:db8:5::9", "2001:db8:5::9"),
        ("2001:DB8:5:0::9", "2001:db8:5::9"),  # canonical form
        ("::ffff:192.168.1.5", LAN_CLIENT),  # mapped: as IPv4
        (f"{LAN_CLIENT}, ::ffff:{OTHER_PROXY}", LAN_CLIENT),  # mapped trusted hop is trusted
    ],
)
def test_x_forwarded_for_chain(x_forwarded_for: str, client: str) -> None:
    assert resolve(x_forwarded_for=x_forwarded_for) == proxied(client)


def test_several_x_forwarded_for_lines_join_with_commas() -> None:
    lines = [f"{REMOTE_CLIENT}, {LAN_CLIENT}", OTHER_PROXY]
    assert resolve(x_forwarded_for=lines) == proxied(LAN_CLIENT)
    assert resolve(x_forwarded_for=[LAN_CLIENT, REMOTE_CLIENT]) == proxied(REMOTE_CLIENT)


def test_a_single_string_is_one_header_value() -> None:
    assert resolve(x_forwarded_for=LAN_CLIENT) == resolve(x_forwarded_for=[LAN_CLIENT])


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (f"for={LAN_CLIENT}", LAN_CLIENT),
        (f'for="{LAN_CLIENT}"', LAN_CLIENT),
        (f'for="{LAN_CLIENT}:4711"', LAN_CLIENT),
        (f'for="{LAN_CLIENT}:_port9"', LAN_CLIENT),  # obfuscated port: fine
        ('for="[2001:db8::1]:4711"', "2001:db8::1"),
        ('for="[2001:db8::1]"', "2001:db8::1"),
        ('for="[::ffff:192.168.1.5]"', LAN_CLIENT),
        (f"for={REMOTE_CLIENT}, for={LAN_CLIENT}", LAN_CLIENT),
        (f"for={LAN_CLIENT};by={PROXY}, for={OTHER_PROXY}", LAN_CLIENT),
        (f"for={OTHER_PROXY}, for={PROXY}", OTHER_PROXY),
        (f"For={LAN_CLIENT};PROTO=http", LAN_CLIENT),  # names are case-insensitive
        (f"for={LAN_CLIENT} ; proto=http ,for={OTHER_PROXY}", LAN_CLIENT),
        (f"proto=http;for={LAN_CLIENT};secret=x", LAN_CLIENT),  # unknown parameters ignored
        ('for="\\[2001:db8::1\\]"', "2001:db8::1"),  # quoted-pair escapes
    ],
)
def test_forwarded_chain(forwarded: str, client: str) -> None:
    result = resolve(forwarded=forwarded)
    assert result.error is None
    assert result.client == client
    assert result.via_proxy


def test_several_forwarded_lines_join_with_commas() -> None:
    lines = [f"for={REMOTE_CLIENT}", f'for="[{V6_PROXY}]"']
    assert resolve(forwarded=lines).client == REMOTE_CLIENT


# --- 4. Forwarded and X-Forwarded-For together -------------------------------------------


def test_both_headers_agreeing_are_used() -> None:
    result = resolve(
        forwarded=f'for={REMOTE_CLIENT}, for="{LAN_CLIENT}:5000"',
        x_forwarded_for=f"{REMOTE_CLIENT}, {LAN_CLIENT}",
    )
    assert result == proxied(LAN_CLIENT)


@pytest.mark.parametrize(
    ("forwarded", "x_forwarded_for"),
    [
        # The proxy maintains only X-Forwarded-For; the client injected Forwarded.
        (f"for={LAN_CLIENT}", STRANGER),
        (f"for={LAN_CLIENT}", f"{LAN_CLIENT}, {STRANGER}"),
        (f"for={STRANGER}, for={LAN_CLIENT}", f"{LAN_CLIENT}, {STRANGER}"),  # order
        ("for=192.168.1.5", "::ffff:192.168.1.6"),
    ],
)
def test_both_headers_disagreeing_is_an_error(forwarded: str, x_forwarded_for: str) -> None:
    result = resolve(forwarded=forwarded, x_forwarded_for=x_forwarded_for)
    assert result.client == PROXY
    assert not result.via_proxy
    assert result.error is not None
    assert "Forwarded and X-Forwarded-For list different addresses" in result.error


# --- 5. proto and host -------------------------------------------------------------------


def test_x_forwarded_proto_and_host_at_the_chosen_position() -> None:
    result = resolve(
        x_forwarded_for=f"{REMOTE_CLIENT}, {LAN_CLIENT}, {OTHER_PROXY}",
        x_forwarded_proto="http, https, http",
        x_forwarded_host="a.example, b.example:8443, c.example",
    )
    assert result == proxied(LAN_CLIENT, proto="https", host="b.example:8443")


def test_all_trusted_chain_uses_the_leftmost_proto_and_host() -> None:
    result = resolve(
        x_forwarded_for=f"{OTHER_PROXY}, {PROXY}",
        x_forwarded_proto="https, http",
        x_forwarded_host="left.example, right.example",
    )
    assert result == proxied(OTHER_PROXY, proto="https", host="left.example")


def test_proto_and_host_with_another_count_are_ignored() -> None:
    result = resolve(
        x_forwarded_for=f"{LAN_CLIENT}, {OTHER_PROXY}",
        x_forwarded_proto="https",
        x_forwarded_host="a.example, b.example, c.example",
    )
    assert result == proxied(LAN_CLIENT)


def test_ignored_proto_and_host_are_not_validated() -> None:
    result = resolve(
        x_forwarded_for=f"{LAN_CLIENT}, {OTHER_PROXY}",
        x_forwarded_proto="gopher",
        x_forwarded_host="a b",
    )
    assert result == proxied(LAN_CLIENT)


def test_proto_and_host_are_lower_case() -> None:
    result = resolve(
        x_forwarded_for=LAN_CLIENT, x_forwarded_proto="HTTPS", x_forwarded_host="GW.Example"
    )
    assert result == proxied(LAN_CLIENT, proto="https", host="gw.example")


def test_forwarded_proto_and_host_of_the_chosen_element() -> None:
    result = resolve(
        forwarded=(
            f"for={REMOTE_CLIENT};proto=http;host=a.example, "
            f'for={LAN_CLIENT};proto=https;host="b.example:8443", '
            f"for={OTHER_PROXY};proto=http;host=c.example"
        )
    )
    assert result == proxied(LAN_CLIENT, proto="https", host="b.example:8443")


def test_forwarded_only_does_not_read_x_forwarded_proto() -> None:
    # A proxy that writes only Forwarded passes X-Forwarded-* through from the client.
    result = resolve(forwarded=f"for={LAN_CLIENT}", x_forwarded_proto="https", x_forwarded_host="x")
    assert result == proxied(LAN_CLIENT)


def test_forwarded_without_proto_falls_back_to_x_forwarded_proto_when_both_chains() -> None:
    result = resolve(
        forwarded=f"for={LAN_CLIENT};host=gw.example",
        x_forwarded_for=LAN_CLIENT,
        x_forwarded_proto="https",
        x_forwarded_host="other.example",
    )
    assert result == proxied(LAN_CLIENT, proto="https", host="gw.example")


@pytest.mark.parametrize(
    "host",
    [
        "gw.example",
        "gw.example:8443",
        "gateway",
        "gateway.local.",
        "192.168.1.2",
        "192.168.1.2:80",
        "[2001:db8::1]",
        "[2001:db8::1]:443",
        "xn--bcher-kva.example",
        "under_score.example",
        "a-b.example:65535",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert resolve(x_forwarded_for=LAN_CLIENT, x_forwarded_host=host).host == host.lower()


@pytest.mark.parametrize(
    "host",
    [
        "a b",
        "a/b",
        "user@gw.example",
        "gw.example:99999",
        "gw.example:",
        ":80",
        "[zz::1]",
        "[1.2.3.4]",
        "[::1",
        "-bad.example",
        "bad-.example",
        "a..b",
        "gw.example:80:80",
        "gw.example/path",
        "gw.example\\x",
        "gw.exämple",
        "2001:db8::1",
        "[fe80::1%eth0]",
        "x" * 300,
    ],
)
def test_malformed_hosts(host: str) -> None:
    result = resolve(x_forwarded_for=LAN_CLIENT, x_forwarded_host=host)
    assert result.error is not None
    assert result.error.startswith("X-Forwarded-Host ")
    assert result.client == PROXY


@pytest.mark.parametrize("proto", ["ftp", "ws", "javascript", "http s", "https:"])
def test_malformed_proto(proto: str) -> None:
    result = resolve(x_forwarded_for=LAN_CLIENT, x_forwarded_proto=proto)
    assert result.error is not None
    assert result.error.startswith("X-Forwarded-Proto ")


def test_malformed_forwarded_proto_or_host_in_any_element() -> None:
    result = resolve(forwarded=f"for={LAN_CLIENT}, for={OTHER_PROXY};proto=ftp")
    assert result.error == "Forwarded proto= 'ftp' is not http or https"
    result = resolve(forwarded=f'for={LAN_CLIENT};host="a b"')
    assert result.error == "Forwarded host= 'a b' is not a host name or address with port"


# --- 6. malformed headers from a trusted proxy -------------------------------------------


@pytest.mark.parametrize(
    ("x_forwarded_for", "error"),
    [
        ("1.2.3.4,,5.6.7.8", "X-Forwarded-For has an empty entry"),
        ("1.2.3.4,", "X-Forwarded-For has an empty entry"),
        ("", "X-Forwarded-For has an empty entry"),
        ("1.2.3.4:5678", not_an_address("1.2.3.4:5678")),
        ("[2001:db8::1]", "X-Forwarded-For entry '[2001:db8::1]' is not an IP address"),
        ("[2001:db8::1]:80", "X-Forwarded-For entry '[2001:db8::1]:80' is not an IP address"),
        ("fe80::1%eth0", "X-Forwarded-For entry 'fe80::1%eth0' is not an IP address"),
        ("unknown", not_an_address("unknown")),
        ("client.example", not_an_address("client.example")),
        ("10.1", not_an_address("10.1")),
        ("1.2.3.4;5.6.7.8", not_an_address("1.2.3.4;5.6.7.8")),
        (",".join(["1.2.3.4"] * (MAX_HOPS + 1)), "X-Forwarded-For has more than 32 entries"),
        ("1" * 9000, "X-Forwarded-For is longer than 8192 characters"),
    ],
)
def test_malformed_x_forwarded_for(x_forwarded_for: str, error: str) -> None:
    assert resolve(x_forwarded_for=x_forwarded_for) == ForwardedResult(client=PROXY, error=error)


def test_max_hops_is_allowed() -> None:
    assert resolve(x_forwarded_for=",".join([LAN_CLIENT] * MAX_HOPS)) == proxied(LAN_CLIENT)


@pytest.mark.parametrize(
    ("forwarded", "error"),
    [
        ("for=_hidden", "Forwarded for='_hidden' hides the address, which is unusable"),
        ("for=unknown", "Forwarded for='unknown' hides the address, which is unusable"),
        ('for="UNKNOWN"', "Forwarded for='UNKNOWN' hides the address, which is unusable"),
        (
            f"for={LAN_CLIENT}, for=_proxy2",
            "Forwarded for='_proxy2' hides the address, which is unusable",
        ),
        ('for="2001:db8::1"', "Forwarded for='2001:db8::1' is not an address with optional port"),
        ('for="[192.168.1.5]"', "Forwarded for='[192.168.1.5]' has an IPv4 address in brackets"),
        (
            'for="[fe80::1%eth0]"',
            "Forwarded for='[fe80::1%eth0]' is not an address with optional port",
        ),
        (
            'for="1.2.3.4:99999"',
            "Forwarded for='1.2.3.4:99999' is not an address with optional port",
        ),
        ("for=10.1", "Forwarded for='10.1' is not an IP address"),
        (
            "for=client.example",
            "Forwarded for='client.example' is not an address with optional port",
        ),
        ("proto=https", "Forwarded element has no for= parameter"),
        (f"for={LAN_CLIENT}, proto=https", "Forwarded element has no for= parameter"),
        (f"for={LAN_CLIENT};for={STRANGER}", "Forwarded element repeats the parameter 'for'"),
        (f"for={LAN_CLIENT};FOR={STRANGER}", "Forwarded element repeats the parameter 'for'"),
        (f"for={LAN_CLIENT},,for={STRANGER}", "Forwarded is malformed at ',for=203.0.113.66'"),
        (f"for={LAN_CLIENT},", "Forwarded is malformed at ''"),
        (f"for={LAN_CLIENT};", "Forwarded is malformed at ''"),
        ("", "Forwarded is malformed at ''"),
        ("for", "Forwarded is malformed at 'for'"),
        ("for=", "Forwarded is malformed at 'for='"),
        ('for="1.2.3.4', "Forwarded is malformed at 'for=\"1.2.3.4'"),
        ("for=[2001:db8::1]", "Forwarded is malformed at 'for=[2001:db8::1]'"),
        ("for = 1.2.3.4", "Forwarded is malformed at 'for = 1.2.3.4'"),
        (f"for={LAN_CLIENT} garbage", "Forwarded is malformed at 'garbage'"),
        (", ".join([f"for={LAN_CLIENT}"] * (MAX_HOPS + 1)), "Forwarded has more than 32 elements"),
    ],
)
def test_malformed_forwarded(forwarded: str, error: str) -> None:
    assert resolve(forwarded=forwarded) == ForwardedResult(client=PROXY, error=error)


def test_header_values_that_are_not_text_are_malformed() -> None:
    result = resolve_client(PROXY, TRUSTED, x_forwarded_for=[b"1.2.3.4"])  # type: ignore[list-item]
    assert result == ForwardedResult(
        client=PROXY, error="X-Forwarded-For has a value that is not text"
    )


def test_error_messages_escape_control_characters() -> None:
    result = resolve(x_forwarded_for="1.2.3.4\x1b[31m\r\nX-Injected: 1")
    assert result.error is not None
    assert "\x1b" not in result.error and "\n" not in result.error


# --- fuzzing -----------------------------------------------------------------------------

HEADER_ALPHABET = st.sampled_from(
    [*'0123456789abcdef.:,;="[]_% \t\\forFOR', "10.0.0.2", "192.168.1.5", "for=", "::ffff:"]
)
header_text = st.one_of(st.text(max_size=80), st.lists(HEADER_ALPHABET, max_size=30).map("".join))
header_values = st.lists(header_text, max_size=3)
peers = st.sampled_from([PROXY, V6_PROXY, "::ffff:10.0.0.9", STRANGER, "fe80::1%eth0", "junk"])


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@given(peers, header_values, header_values, header_values, header_values)
@settings(max_examples=400)
def test_fuzz_never_raises(
    peer: str, forwarded: list[str], x_forwarded_for: list[str], proto: list[str], host: list[str]
) -> None:
    result = resolve_client(
        peer,
        TRUSTED,
        forwarded=forwarded,
        x_forwarded_for=x_forwarded_for,
        x_forwarded_proto=proto,
        x_forwarded_host=host,
    )
    assert isinstance(result, ForwardedResult)
    if result.error is not None or not result.via_proxy:
        assert result.proto is None and result.host is None
        assert result.client == peer or not is_address(peer) or is_address(result.client)
    else:
        assert is_address(result.client)
        assert result.proto in (None, "http", "https")
        assert result.host is None or (" " not in result.host and "/" not in result.host)
    if not TRUSTED.decide(peer).allowed:
        assert not result.via_proxy and result.error is None


def naive_client(entries: list[str]) -> tuple[str, bool]:
    """The rightmost untrusted hop (or the leftmost), and whether every hop is trusted."""
    hops = [ipaddress.ip_address(entry) for entry in entries]
    hops = [
        hop.ipv4_mapped if isinstance(hop, ipaddress.IPv6Address) and hop.ipv4_mapped else hop
        for hop in hops
    ]
    for hop in reversed(hops):
        if not TRUSTED.contains(str(hop)):
            return str(hop), False
    return str(hops[0]), True


@given(header_values)
@settings(max_examples=400)
def test_fuzz_x_forwarded_for_never_picks_a_trusted_client_unless_all_hops_are(
    x_forwarded_for: list[str],
) -> None:
    result = resolve(x_forwarded_for=x_forwarded_for)
    if result.error is not None or not x_forwarded_for:
        assert not result.via_proxy
        return
    entries = [entry.strip(" \t") for entry in ",".join(x_forwarded_for).split(",")]
    expected, all_trusted = naive_client(entries)
    assert result.client == expected
    assert TRUSTED.contains(result.client) == all_trusted


HOP_POOL = [
    LAN_CLIENT,
    REMOTE_CLIENT,
    "2001:db8:5::9",
    "::ffff:198.51.100.8",
    OTHER_PROXY,
    PROXY,
    V6_PROXY,
    "::ffff:10.0.0.3",
]


def forwarded_node(address: str, style: int) -> str:
    bracketed = f"[{address}]" if ":" in address else address
    if style == 0 and ":" not in address:
        return address
    if style == 1:
        return f'"{bracketed}"'
    return f'"{bracketed}:{4000 + style}"'


@given(
    hops=st.lists(st.sampled_from(HOP_POOL), min_size=1, max_size=8),
    styles=st.lists(st.integers(0, 3), min_size=8, max_size=8),
    use=st.sampled_from(["xff", "forwarded", "both"]),
    lines=st.integers(1, 3),
)
@settings(max_examples=300)
def test_chain_from_well_formed_headers(
    hops: list[str], styles: list[int], use: str, lines: int
) -> None:
    xff_entries = [f"{hop}{' ' * style}" for hop, style in zip(hops, styles, strict=False)]
    xff_lines = [", ".join(xff_entries[index::lines]) for index in range(lines)]
    xff_lines = [line for line in xff_lines if line]
    # Interleaved slicing reorders entries; rebuild the order the header actually gives.
    order = [entry.strip() for line in xff_lines for entry in line.split(",")]
    forwarded = ", ".join(
        f"for={forwarded_node(hop, style)}" + (";proto=https" if style == 2 else "")
        for hop, style in zip(order, styles, strict=False)
    )
    headers: dict[str, object] = {}
    if use in ("xff", "both"):
        headers["x_forwarded_for"] = xff_lines
    if use in ("forwarded", "both"):
        headers["forwarded"] = forwarded
    result = resolve_client(PROXY, TRUSTED, **headers)  # type: ignore[arg-type]
    expected, all_trusted = naive_client(order)
    assert result.error is None, result.error
    assert result.via_proxy
    assert result.client == expected
    assert TRUSTED.contains(result.client) == all_trusted

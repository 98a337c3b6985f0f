"""Unit and property tests of the allowlist policy core (gateway/policy/allowlist.py)."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.policy.allowlist import (
    DEFAULT_NETWORKS,
    AddressError,
    AllowlistEntry,
    AllowlistEntryError,
    AllowlistNetwork,
    CompiledAllowlist,
    ConnectionDecision,
    decide_connection,
    default_networks,
    parse_address,
    parse_network,
)

NOW = 1_700_000_000.0


def entry(key: str, text: str, expires_at: float | None = None) -> AllowlistEntry[str]:
    return AllowlistEntry(key, parse_network(text), expires_at)


def compiled(*texts: str, now: float = NOW) -> CompiledAllowlist[str]:
    return CompiledAllowlist([entry(text, text) for text in texts], now=now)


# --- parsing entries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.0/24", "192.168.1.0/24"),
        ("192.168.1.7", "192.168.1.7/32"),
        ("  10.0.0.0/8\n", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("203.0.113.9/32", "203.0.113.9/32"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8:0:0::/64", "2001:db8::/64"),
        ("2001:db8::7", "2001:db8::7/128"),
        ("::/0", "::/0"),
        ("::1", "::1/128"),
        ("fe80::/10", "fe80::/10"),
        # IPv4-mapped IPv6 entries are stored as the IPv4 network they denote.
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:192.168.1.7", "192.168.1.7/32"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        # ...but a network that only contains the mapped range stays IPv6.
        ("::/64", "::/64"),
    ],
)
def test_parse_network_accepts(text: str, expected: str) -> None:
    assert str(parse_network(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "10.0.0.300/24",
            "allowlist entry '10.0.0.300/24' is not an IPv4 or IPv6 network; "
            "example: 192.168.1.0/24",
        ),
        (
            "fe80::/129",
            "allowlist entry 'fe80::/129' has prefix length /129, longer than the 128 bits of "
            "an IPv6 address; example: 2001:db8::/32",
        ),
        (
            "10.0.0.0/33",
            "allowlist entry '10.0.0.0/33' has prefix length /33, longer than the 32 bits of "
            "an IPv4 address; example: 192.168.1.0/24",
        ),
        (
            "192.168.1.5/24",
            "allowlist entry '192.168.1.5/24' has host bits set; did you mean 192.168.1.0/24 "
            "(the network) or 192.168.1.5/32 (the single address)?",
        ),
        (
            "2001:db8::1/64",
            "allowlist entry '2001:db8::1/64' has host bits set; did you mean 2001:db8::/64 "
            "(the network) or 2001:db8::1/128 (the single address)?",
        ),
        (
            "router.fritz.box",
            "allowlist entry 'router.fritz.box' is not an IPv4 or IPv6 network; "
            "example: 192.168.1.0/24",
        ),
        ("", "allowlist entry '' is empty; example: 192.168.1.0/24"),
        ("   ", "allowlist entry '   ' is empty; example: 192.168.1.0/24"),
        (
            "fe80::1%eth0",
            "allowlist entry 'fe80::1%eth0' has a zone id (the part after '%'), which names a "
            "local interface and cannot be allowlisted; example: fe80::/10",
        ),
        (
            "10.0.0.0/255.0.0.0",
            "allowlist entry '10.0.0.0/255.0.0.0' has a netmask where a prefix length belongs; "
            "did you mean 10.0.0.0/8?",
        ),
        (
            "10.0.0.0/024",
            "allowlist entry '10.0.0.0/024' has prefix length '024', which is not a whole "
            "number from 0 to 32; example: 192.168.1.0/24",
        ),
        (
            "10.0.0.0/",
            "allowlist entry '10.0.0.0/' has prefix length '', which is not a whole number "
            "from 0 to 32; example: 192.168.1.0/24",
        ),
    ],
)
def test_parse_network_refuses_with_a_message_and_an_example(text: str, message: str) -> None:
    with pytest.raises(AllowlistEntryError) as refused:
        parse_network(text)
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "10.1",  # shorthand that inet_aton and netaddr's lenient mode read as 10.0.0.1
        "127.1",
        "10.1/8",
        "010.0.0.1",  # octal to some parsers
        "0x7f.0.0.1",
        "0177.0.0.1",
        "2130706433",  # an integer
        "1.2.3",
        "1.2.3.4.5",
        "10.0.0.0/-1",
        "10.0.0.0/8/8",
        "10.0.0.0 /8",
        "[2001:db8::]/32",
        "2001:db8::/+32",
        "\u0661\u0660.0.0.1",  # non-ASCII digits
        "1.2.3.4\x00",
        "::ffff:1.2.3",
        "2001:db8:::1",
    ],
)
def test_parse_network_refuses_shorthand_and_odd_forms(text: str) -> None:
    with pytest.raises(AllowlistEntryError, match=r"^allowlist entry '.*'.*"):
        parse_network(text)


def test_parse_network_message_is_cut_short_and_escaped() -> None:
    with pytest.raises(AllowlistEntryError) as refused:
        parse_network("x" * 500 + "\n\x1b[31m")
    assert len(str(refused.value)) < 200
    assert "\x1b" not in str(refused.value)


def test_allowlist_network_refuses_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="not an IPv4 network address"):
        AllowlistNetwork(4, 0x0A000001, 8)
    with pytest.raises(ValueError, match="out of range"):
        AllowlistNetwork(6, 0, 129)
    with pytest.raises(ValueError, match="4 or 6"):
        AllowlistNetwork(5, 0, 0)  # type: ignore[arg-type]


# --- parsing addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.10", (4, 0xC0A8010A)),
        ("::ffff:10.0.0.1", (4, 0x0A000001)),
        ("::FFFF:10.0.0.1", (4, 0x0A000001)),
        ("2001:db8::1", (6, 0x20010DB8 << 96 | 1)),
        ("fe80::1%eth0", (6, 0xFE80 << 112 | 1)),
        ("fe80::1%3", (6, 0xFE80 << 112 | 1)),
        ("::1", (6, 1)),
    ],
)
def test_parse_address(text: str, expected: tuple[int, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "10.1",
        "127.1",
        "010.0.0.1",
        "0x7f.0.0.1",
        "1.2.3.4 ",
        "",
        "fe80::1%",
        "1.2.3.4%eth0",
        "[::1]",
        "1.2.3.4:80",
        "localhost",
        "\x00",
    ],
)
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


# --- lookups ---------------------------------------------------------------------------


def test_mapped_ipv4_client_is_judged_as_ipv4() -> None:
    allowlist = compiled("192.168.1.0/24")
    assert allowlist.contains("::ffff:192.168.1.20")
    assert not allowlist.contains("::ffff:192.168.2.20")


def test_mapped_entry_matches_plain_and_mapped_clients() -> None:
    allowlist = compiled("::ffff:192.168.1.0/120")
    assert allowlist.match("192.168.1.20") == "::ffff:192.168.1.0/120"
    assert allowlist.match("::ffff:192.168.1.20") == "::ffff:192.168.1.0/120"


def test_ipv6_network_covering_the_mapped_range_does_not_match_mapped_clients() -> None:
    allowlist = compiled("::/0")
    assert allowlist.contains("2001:db8::1")
    assert not allowlist.contains("::ffff:192.168.1.20")
    assert not allowlist.contains("192.168.1.20")


def test_zone_id_is_ignored_when_looking_up() -> None:
    allowlist = compiled("fe80::/10")
    assert allowlist.contains("fe80::1%eth0")
    assert allowlist.contains("fe80::1%wg0")
    assert allowlist.contains("fe80::1")


def test_match_returns_the_most_specific_entry() -> None:
    allowlist = compiled("10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "2001:db8::/32", "2001:db8::/48")
    assert allowlist.match("10.1.2.3") == "10.1.2.3"
    assert allowlist.match("10.1.2.4") == "10.1.0.0/16"
    assert allowlist.match("10.2.0.0") == "10.0.0.0/8"
    assert allowlist.match("10.255.255.255") == "10.0.0.0/8"
    assert allowlist.match("11.0.0.0") is None
    assert allowlist.match("9.255.255.255") is None
    assert allowlist.match("2001:db8:0:1::") == "2001:db8::/48"
    assert allowlist.match("2001:db8:1::") == "2001:db8::/32"
    assert allowlist.match("2001:db9::") is None


def test_identical_networks_first_entry_wins() -> None:
    allowlist = CompiledAllowlist(
        [entry("first", "10.0.0.0/8"), entry("second", "10.0.0.0/8")], now=NOW
    )
    assert allowlist.match("10.9.9.9") == "first"


def test_entry_order_does_not_change_the_most_specific_match() -> None:
    forward = compiled("10.1.2.3", "10.1.0.0/16", "10.0.0.0/8")
    backward = compiled("10.0.0.0/8", "10.1.0.0/16", "10.1.2.3")
    for address in ("10.1.2.3", "10.1.9.9", "10.9.9.9", "11.0.0.0"):
        assert forward.match(address) == backward.match(address)


def test_edges_of_the_address_space() -> None:
    allowlist = compiled("0.0.0.0/32", "255.255.255.255", "::/128", "ffff:ffff:ffff:ffff::/64")
    assert allowlist.contains("0.0.0.0")
    assert allowlist.contains("255.255.255.255")
    assert not allowlist.contains("0.0.0.1")
    assert not allowlist.contains("255.255.255.254")
    assert allowlist.contains("::")
    assert allowlist.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    assert not allowlist.contains("::2")


def test_empty_allowlist_contains_nothing() -> None:
    allowlist: CompiledAllowlist[str] = CompiledAllowlist([], now=NOW)
    assert not allowlist.contains("10.0.0.1")
    assert not allowlist.contains("::1")
    assert len(allowlist) == 0
    assert allowlist.next_expiry is None


def test_match_and_contains_refuse_text_that_is_no_address() -> None:
    allowlist = compiled("10.0.0.0/8")
    with pytest.raises(AddressError):
        allowlist.contains("10.1")
    with pytest.raises(AddressError):
        allowlist.match("not an address")


def test_match_value_takes_integers_and_judges_mapped_as_ipv4() -> None:
    allowlist = compiled("10.0.0.0/8", "2001:db8::/32")
    assert allowlist.match_value(4, 0x0A010203) == "10.0.0.0/8"
    assert allowlist.match_value(6, 0xFFFF0A010203) == "10.0.0.0/8"
    assert allowlist.match_value(6, 0x20010DB8 << 96) == "2001:db8::/32"
    assert allowlist.match_value(4, 0x0B000000) is None
    with pytest.raises(AddressError):
        allowlist.match_value(4, 1 << 32)
    with pytest.raises(AddressError):
        allowlist.match_value(5, 1)


def test_snapshot_is_immutable() -> None:
    allowlist = compiled("10.0.0.0/8")
    with pytest.raises(AttributeError):
        allowlist.entries = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        allowlist.entries[0].network = parse_network("0.0.0.0/0")  # type: ignore[misc]


def test_cached_answers_stay_correct_past_the_cache_size() -> None:
    allowlist = CompiledAllowlist([entry("lan", "10.0.0.0/24")], now=NOW, cache_size=4)
    for _ in range(3):
        for last in range(256):
            assert allowlist.contains(f"10.0.0.{last}")
            assert not allowlist.contains(f"10.0.1.{last}")


# --- expiry ----------------------------------------------------------------------------


def test_expired_entries_are_left_out_and_next_expiry_is_the_soonest() -> None:
    allowlist = CompiledAllowlist(
        [
            entry("lan", "192.168.0.0/16"),
            entry("gone", "203.0.113.1", expires_at=NOW - 60),
            entry("ends-now", "203.0.113.2", expires_at=NOW),
            entry("soon", "203.0.113.3", expires_at=NOW + 60),
            entry("later", "203.0.113.4", expires_at=NOW + 3600),
        ],
        now=NOW,
    )
    assert [kept.key for kept in allowlist.entries] == ["lan", "soon", "later"]
    assert not allowlist.contains("203.0.113.1")
    assert not allowlist.contains("203.0.113.2")
    assert allowlist.match("203.0.113.3") == "soon"
    assert allowlist.next_expiry == NOW + 60
    assert allowlist.built_at == NOW
    assert not allowlist.is_stale(NOW + 59.9)
    assert allowlist.is_stale(NOW + 60)


def test_rebuilding_after_next_expiry_drops_the_entry() -> None:
    entries = [entry("soon", "203.0.113.3", expires_at=NOW + 60), entry("lan", "10.0.0.0/8")]
    before = CompiledAllowlist(entries, now=NOW)
    after = CompiledAllowlist(entries, now=NOW + 60)
    assert before.contains("203.0.113.3")
    assert not after.contains("203.0.113.3")
    assert after.next_expiry is None
    assert not after.is_stale(NOW + 10**9)


def test_expired_more_specific_entry_falls_back_to_the_enclosing_one() -> None:
    entries = [entry("lan", "10.0.0.0/8"), entry("host", "10.1.2.3", expires_at=NOW)]
    assert CompiledAllowlist(entries, now=NOW - 1).match("10.1.2.3") == "host"
    assert CompiledAllowlist(entries, now=NOW).match("10.1.2.3") == "lan"


def test_entry_refuses_nan_expiry() -> None:
    with pytest.raises(ValueError, match="NaN"):
        entry("x", "10.0.0.1", expires_at=float("nan"))


# --- defaults --------------------------------------------------------------------------


def test_default_networks() -> None:
    assert [str(network) for network in default_networks()] == list(DEFAULT_NETWORKS)
    defaults = CompiledAllowlist.from_networks(default_networks())
    for allowed in (
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.178.20",
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "fd12:3456::1",
        "fc00::1",
        "::ffff:192.168.1.2",
    ):
        assert defaults.contains(allowed), allowed
    for denied in (
        "8.8.8.8",
        "172.32.0.1",
        "172.15.255.255",
        "192.169.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "fe80::1%eth0",
        "2001:db8::1",
        "::2",
        "::ffff:8.8.8.8",
    ):
        assert not defaults.contains(denied), denied


def test_from_networks_keys_entries_by_network_and_parses_text() -> None:
    allowlist = CompiledAllowlist.from_networks(["10.0.0.0/8", parse_network("fd00::/8")])
    assert allowlist.match("10.0.0.1") == parse_network("10.0.0.0/8")
    assert str(allowlist.match("fd00::1")) == "fd00::/8"
    with pytest.raises(AllowlistEntryError):
        CompiledAllowlist.from_networks(["10.0.0.300"])


# --- the accept decision ---------------------------------------------------------------


def test_decision_allowed_names_the_entry() -> None:
    allowlist = compiled("192.168.0.0/16", "192.168.1.7")
    assert decide_connection("192.168.1.7", allowlist) == ConnectionDecision(
        allowed=True, reason="allowed", entry_key="192.168.1.7"
    )
    assert decide_connection("::ffff:192.168.9.9", allowlist) == ConnectionDecision(
        allowed=True, reason="allowed", entry_key="192.168.0.0/16"
    )


def test_decision_not_allowlisted() -> None:
    decision = decide_connection("203.0.113.50", compiled("192.168.0.0/16"))
    assert decision == ConnectionDecision(allowed=False, reason="not_allowlisted")
    assert decision.entry_key is None


@pytest.mark.parametrize(
    "peer",
    [
        "",
        "10.1",
        "not-an-ip",
        "1.2.3.4:5678",
        "[::1]",
        "fe80::1%",
        "1.2.3.4%eth0",
        "\ud800",
        "1.2.3.4\x00",
        None,
        167772161,
        b"10.0.0.1",
        ["10.0.0.1"],
        ("10.0.0.1", 80),
    ],
)
def test_decision_bad_address_never_raises(peer: object) -> None:
    decision = decide_connection(peer, compiled("0.0.0.0/0", "::/0"))  # type: ignore[arg-type]
    assert decision == ConnectionDecision(allowed=False, reason="bad_address")


@given(st.text(max_size=50))
@settings(max_examples=200)
def test_decision_never_raises_on_any_text(peer: str) -> None:
    decision = decide_connection(peer, compiled("0.0.0.0/0", "::/0"))
    assert decision.reason in ("allowed", "bad_address")
    assert decision.allowed == (decision.reason == "allowed")


# --- property: the snapshot agrees with a naive per-entry check ------------------------


def naive_match(entries: list[tuple[str, float | None]], address: str, now: float) -> int | None:
    """Index of the most specific unexpired entry containing the address (first on ties)."""
    client = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    best: int | None = None
    best_prefix = -1
    for index, (text, expires_at) in enumerate(entries):
        if expires_at is not None and expires_at <= now:
            continue
        network = ipaddress.ip_network(text)
        mapped = network.version == 6 and network.prefixlen >= 96
        if mapped and network.network_address.ipv4_mapped is not None:  # type: ignore[union-attr]
            network = ipaddress.ip_network(
                (network.network_address.ipv4_mapped, network.prefixlen - 96)  # type: ignore[union-attr]
            )
        if client.version == network.version and client in network:
            if network.prefixlen > best_prefix:
                best, best_prefix = index, network.prefixlen
    return best


@st.composite
def network_lists(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(version, first, prefix) triples, clustered around a few anchors so they nest."""
    anchors = {4: draw(st.integers(0, 2**32 - 1)), 6: draw(st.integers(0, 2**128 - 1))}
    networks = []
    for _ in range(draw(st.integers(0, 12))):
        version = draw(st.sampled_from([4, 6]))
        bits = 32 if version == 4 else 128
        prefix = draw(st.one_of(st.sampled_from([0, 1, bits - 1, bits]), st.integers(0, bits)))
        if draw(st.booleans()):
            value = anchors[version] ^ draw(st.integers(0, 2 ** draw(st.integers(0, bits)) - 1))
        else:
            value = draw(st.integers(0, 2**bits - 1))
        value &= (2**bits - 1) ^ (2 ** (bits - prefix) - 1)
        networks.append((version, value, prefix))
    return networks


def render_network(version: int, first: int, prefix: int, as_mapped: bool) -> str:
    if version == 4 and as_mapped:
        return f"::ffff:{ipaddress.IPv4Address(first)}/{prefix + 96}"
    return (
        f"{ipaddress.ip_address(first) if version == 4 else ipaddress.IPv6Address(first)}/{prefix}"
    )


def render_address(version: int, value: int, style: int) -> str:
    if version == 4:
        text = str(ipaddress.IPv4Address(value))
        return f"::ffff:{text}" if style == 1 else text
    text = str(ipaddress.IPv6Address(value))
    return f"{text}%eth{style}" if style else text


@given(
    networks=network_lists(),
    mapped_flags=st.lists(st.booleans(), min_size=12, max_size=12),
    expiries=st.lists(
        st.sampled_from([None, None, NOW - 1, NOW, NOW + 1]), min_size=12, max_size=12
    ),
    picks=st.lists(
        st.tuples(
            st.integers(0, 11),
            st.sampled_from(["inside", "first", "last", "before", "after", "random"]),
            st.integers(0, 2**128 - 1),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=12,
    ),
    random_version=st.sampled_from([4, 6]),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_compiled_allowlist_agrees_with_naive_check(
    networks: list[tuple[int, int, int]],
    mapped_flags: list[bool],
    expiries: list[float | None],
    picks: list[tuple[int, str, int, int]],
    random_version: int,
) -> None:
    texts = [
        (render_network(version, first, prefix, mapped_flags[index]), expiries[index])
        for index, (version, first, prefix) in enumerate(networks)
    ]
    allowlist = CompiledAllowlist(
        [
            AllowlistEntry(index, parse_network(text), expires)
            for index, (text, expires) in enumerate(texts)
        ],
        now=NOW,
    )
    for index, where, noise, style in picks:
        if networks:
            version, first, prefix = networks[index % len(networks)]
        else:
            version, first, prefix = random_version, 0, 0
        bits = 32 if version == 4 else 128
        last = first + 2 ** (bits - prefix) - 1
        value = {
            "inside": first + noise % (last - first + 1),
            "first": first,
            "last": last,
            "before": first - 1,
            "after": last + 1,
            "random": noise % 2**bits,
        }[where]
        if not 0 <= value < 2**bits:
            continue
        address = render_address(version, value, style)
        expected = naive_match(texts, address, NOW)
        assert allowlist.match(address) == expected, (address, texts)
        assert allowlist.contains(address) == (expected is not None)
        decision = decide_connection(address, allowlist)
        assert decision.allowed == (expected is not None)
        assert decision.entry_key == expected

"""The ``cemm-gateway`` command.

Every subcommand that touches state takes ``--config FILE`` and works on the same data
directory as the running gateway, which notices the change within a second. Subcommands
call the service layer; none of them writes SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway import durations
from gateway.auth import passwords
from gateway.logs import setup_logging
from gateway.netutil import machine_names
from gateway.policy import names
from gateway.services import allowlist as allowlist_service
from gateway.services import api_tokens, bans, peers, sessions, users
from gateway.services import audit as audit_service
from gateway.settings import Settings, SettingsError, load_settings
from gateway.store import db
from gateway.wireguard import keys as wg_keys
from gateway.wireguard.keys import KeyVault

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A command that cannot be carried out; printed as ``error: ...`` with exit code 1."""


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


@contextmanager
def _open(settings: Settings) -> Iterator[sqlite3.Connection]:
    conn = db.connect(settings.database_path)
    try:
        yield conn
    finally:
        conn.close()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


Row = tuple[str, ...]


def _table(header: Row, rows: Sequence[Row], *, indent: str = "") -> None:
    """Print the header and rows in left-aligned columns, two spaces apart.

    Every cell, the last of a line too, is padded to the width of its column's widest cell.
    """
    lines = [header, *rows]
    widths = [max(map(len, column)) for column in zip(*lines, strict=True)]
    for line in lines:
        print(
            indent + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        )


def _print_list(
    header: Row,
    rows: Sequence[Row],
    records: object,
    *,
    as_json: bool,
    empty: str | None = None,
) -> int:
    """Print a list command's result; its exit code.

    With ``as_json``: ``records`` as JSON. Else the table, or ``empty`` in its place when
    there are no rows (without ``empty``, an empty list is the header alone).
    """
    if as_json:
        print(json.dumps(records, indent=2))
    elif rows or empty is None:
        _table(header, rows)
    else:
        print(empty)
    return EXIT_OK


# -- run / demo / simulator ---------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import serve

    settings = _settings(args)
    setup_logging(settings.log.level, settings.log.format)
    asyncio.run(serve(settings))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    setup_logging("info", "text")
    return asyncio.run(run_demo(listen_host=args.listen_host))


def cmd_simulator(args: argparse.Namespace) -> int:
    from gateway import simulator

    return simulator.run_from_args(args)


# -- allow ------------------------------------------------------------------------------
def cmd_allow_add(args: argparse.Namespace) -> int:
    expires_in = durations.parse_duration(args.expires) if args.expires else None
    network = allowlist_service.normalise(args.network)
    with _open(_settings(args)) as conn:
        saved = allowlist_service.save_entry(
            conn, network, actor=_actor(), label=args.label or "", expires_in=expires_in
        )
    entry, previous = saved.entry, saved.previous
    if previous is None:
        expiry = f", expires {_when(entry.expires_at)}" if entry.expires_at else ""
        print(f"allowed {entry.network}{expiry}")
        return EXIT_OK
    # The network was listed already: its label and expiry are replaced, and that is said.
    now, was = _entry_terms(entry), _entry_terms(previous)
    change = f"; was {was}" if was != now else "; unchanged"
    print(f"updated {entry.network} ({now}{change})")
    return EXIT_OK


def _entry_terms(entry: allowlist_service.Entry) -> str:
    label = f"label {entry.label!r}" if entry.label else "no label"
    expiry = f"expires {_when(entry.expires_at)}" if entry.expires_at else "no expiry"
    return f"{label}, {expiry}"


def cmd_allow_remove(args: argparse.Namespace) -> int:
    network = allowlist_service.normalise(args.network)
    with _open(_settings(args)) as conn:
        allowlist_service.remove_entry(conn, network, actor=_actor())
    print(f"removed {network}")
    return EXIT_OK


def cmd_allow_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _open(settings) as conn:
        entries = allowlist_service.list_entries(conn)
    now = dt.datetime.now().timestamp()
    if args.json:
        print(
            json.dumps(
                {
                    "default_networks": settings.allowlist.default_networks,
                    "entries": [
                        {**entry.__dict__, "active": entry.active(now)} for entry in entries
                    ],
                },
                indent=2,
            )
        )
        return EXIT_OK
    print("Always allowed ([allowlist] default_networks in the configuration):")
    for network in settings.allowlist.default_networks:
        print(f"  {network}")
    if not entries:
        print("No added entries. Add one with: cemm-gateway allow add 203.0.113.7 --label office")
        return EXIT_OK
    rows = [
        (
            entry.network,
            entry.label or "-",
            _when(entry.expires_at) + ("" if entry.active(now) else " (expired)"),
            str(entry.hits),
            _when(entry.last_hit_at),
            entry.created_by,
        )
        for entry in entries
    ]
    print("Added entries:")
    _table(("NETWORK", "LABEL", "EXPIRES", "HITS", "LAST HIT", "ADDED BY"), rows, indent="  ")
    return EXIT_OK


# -- users ------------------------------------------------------------------------------
def _read_password(args: argparse.Namespace, name: str) -> tuple[str, bool]:
    """(password, generated): from stdin, a prompt on a terminal, or generated."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError("no password on standard input")
        return password, False
    if sys.stdin.isatty():
        first = getpass.getpass(f"New password for {name}: ")
        if first != getpass.getpass("Again: "):
            raise CommandError("the two passwords differ; nothing was changed")
        return first, False
    return passwords.generate_password(username=name), True


def cmd_user_add(args: argparse.Namespace) -> int:
    users.check_name(args.name)
    users.check_role(args.role)
    password, generated = _read_password(args, args.name)
    with _open(_settings(args)) as conn:
        user = users.add_user(
            conn, args.name, role=args.role, password=password, actor=_actor(), email=args.email
        )
    print(f"added {user.role} {user.name}")
    if generated:
        print(f"password: {password}  (shown once)")
    return EXIT_OK


def cmd_user_passwd(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        users.require_user(conn, args.name)
        password, generated = _read_password(args, args.name)
        users.set_password(conn, args.name, password, actor=_actor())
    print(f"password of {args.name} changed; its sessions were ended")
    if generated:
        print(f"password: {password}  (shown once)")
    return EXIT_OK


def cmd_user_disable(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        users.set_disabled(conn, args.name, True, actor=_actor())
    print(f"disabled {args.name}; its sessions were ended")
    return EXIT_OK


def cmd_user_enable(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        users.set_disabled(conn, args.name, False, actor=_actor())
    print(f"enabled {args.name}")
    return EXIT_OK


def cmd_user_remove(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        users.remove_user(conn, args.name, actor=_actor())
    print(f"removed {args.name}")
    return EXIT_OK


def cmd_user_role(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        user = users.set_role(conn, args.name, args.role, actor=_actor())
    print(f"{user.name} is now {user.role}")
    return EXIT_OK


def cmd_user_reset_2fa(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        users.disable_totp(conn, args.name, actor=_actor())
    print(f"two-step verification of {args.name} is off; they can set it up again")
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        found = users.list_users(conn)
    rows = [
        (
            user.name,
            user.role,
            "disabled" if user.disabled else "enabled",
            "on" if user.totp_enabled else "off",
            "oidc" if user.oidc_managed else "password",
            user.email or "-",
        )
        for user in found
    ]
    return _print_list(
        ("NAME", "ROLE", "STATE", "2FA", "SIGN-IN", "EMAIL"),
        rows,
        [user.__dict__ for user in found],
        as_json=args.json,
    )


# -- sessions -----------------------------------------------------------------------------
def cmd_session_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _open(settings) as conn:
        user_id = users.require_user(conn, args.user).id if args.user else None
        found = sessions.list_sessions(
            conn,
            now=dt.datetime.now().timestamp(),
            idle_timeout=settings.auth.session_idle_timeout,
            user_id=user_id,
        )
    rows = [
        (
            info.id,
            info.user_name,
            info.client_address or "-",
            _when(info.last_seen_at),
            _when(info.expires_at),
            (info.user_agent or "-")[:40],
        )
        for info in found
    ]
    return _print_list(
        ("ID", "USER", "ADDRESS", "LAST SEEN", "EXPIRES", "DEVICE"),
        rows,
        [{k: v for k, v in info.__dict__.items() if k != "csrf_token"} for info in found],
        as_json=args.json,
        empty="No active sessions.",
    )


def cmd_session_revoke(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.user):
        raise CommandError("give a session ID or --user NAME (one of the two)")
    with _open(_settings(args)) as conn:
        if args.user:
            ended = sessions.revoke_user_sessions(
                conn, users.require_user(conn, args.user), actor=_actor()
            )
            print(f"ended {ended} session(s) of {args.user}")
        else:
            sessions.revoke_session(conn, args.id, actor=_actor(), reason="revoked")
            print(f"ended session {args.id}")
    return EXIT_OK


# -- API tokens ---------------------------------------------------------------------------
def cmd_token_add(args: argparse.Namespace) -> int:
    expires_in = durations.parse_duration(args.expires) if args.expires else None
    with _open(_settings(args)) as conn:
        token, record = api_tokens.create_token(
            conn,
            args.user,
            name=args.name,
            read_only=args.read_only,
            expires_in=expires_in,
            actor=_actor(),
        )
    print(token)
    kind = "read-only " if record.read_only else ""
    print(
        f"{kind}token {record.id} for {record.user_name}; shown once. Use it as the header "
        "'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        found = api_tokens.list_tokens(conn, user_name=args.user)
    now = dt.datetime.now().timestamp()
    rows = [
        (
            token.id,
            token.user_name,
            token.name,
            "read-only" if token.read_only else "full",
            _when(token.expires_at),
            _when(token.last_used_at),
            "active" if token.active(now) else ("revoked" if token.revoked_at else "expired"),
        )
        for token in found
    ]
    return _print_list(
        ("ID", "USER", "NAME", "ACCESS", "EXPIRES", "LAST USED", "STATE"),
        rows,
        [{**token.__dict__, "active": token.active(now)} for token in found],
        as_json=args.json,
        empty="No API tokens. Create one with: cemm-gateway token add USER --name 'home assistant'",
    )


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        api_tokens.revoke_token(conn, args.id, actor=_actor())
    print(f"revoked token {args.id}")
    return EXIT_OK


# -- bans ---------------------------------------------------------------------------------
def cmd_bans_list(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        found = bans.list_bans(conn, now=dt.datetime.now().timestamp())
    return _print_list(
        ("ID", "SUBJECT", "SINCE", "UNTIL", "REASON"),
        [
            (str(ban.id), ban.subject, _when(ban.created_at), _when(ban.until), ban.reason)
            for ban in found
        ],
        [ban.__dict__ for ban in found],
        as_json=args.json,
        empty="No active bans.",
    )


def cmd_bans_lift(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        lifted = bans.lift(conn, args.which, actor=_actor())
    for ban in lifted:
        print(f"lifted the ban on {ban.subject}")
    return EXIT_OK


# -- WireGuard peers ----------------------------------------------------------------------
def _wireguard(settings: Settings) -> tuple[KeyVault, str]:
    from gateway.wireguard.manager import key_directory

    if not settings.wireguard.enabled:
        raise CommandError(
            'WireGuard is off; set [wireguard] enabled = true and endpoint = "host:port" first'
        )
    directory = key_directory(settings.data_dir)
    return KeyVault(directory), wg_keys.public_key(wg_keys.server_private_key(directory))


def _print_config(settings: Settings, conn: sqlite3.Connection, name: str, *, qr: bool) -> None:
    vault, server_key = _wireguard(settings)
    text = peers.client_config(
        conn, name, settings=settings.wireguard, vault=vault, server_public_key=server_key
    )
    print(text, end="")
    if qr:
        from gateway.qr import qr_text

        print(qr_text(text), file=sys.stderr)
    print(
        f"# The configuration of '{name}' (shown once; keep it secret). Import it in the "
        "WireGuard app, or scan the QR code with --qr.",
        file=sys.stderr,
    )


def cmd_peer_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    vault, _ = _wireguard(settings)
    expires_in = durations.parse_duration(args.expires) if args.expires else None
    with _open(settings) as conn:
        peer = peers.add_peer(
            conn,
            args.name,
            settings=settings.wireguard,
            vault=vault,
            actor=_actor(),
            user_name=args.user,
            public_key=args.public_key,
            trusted=args.trusted,
            expires_in=expires_in,
        )
        if args.public_key:
            print(f"added peer {peer.name} at {peer.address_v4} with its own key")
            return EXIT_OK
        _print_config(settings, conn, peer.name, qr=args.qr)
    return EXIT_OK


def cmd_peer_list(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        found = peers.list_peers(conn)
    now = dt.datetime.now().timestamp()
    rows = [
        (
            peer.name,
            peer.address_v4,
            "enabled" if peer.active(now) else ("expired" if peer.enabled else "disabled"),
            "yes" if peer.trusted else "no",
            _when(peer.first_handshake_at),
            _when(peer.expires_at),
            peer.user_name or "-",
        )
        for peer in found
    ]
    return _print_list(
        ("NAME", "ADDRESS", "STATE", "TRUSTED", "FIRST HANDSHAKE", "EXPIRES", "USER"),
        rows,
        [{**peer.__dict__, "active": peer.active(now)} for peer in found],
        as_json=args.json,
        empty="No peers. Add a phone with: cemm-gateway peer add 'anna phone' --qr",
    )


def cmd_peer_enable(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        peers.set_enabled(conn, args.name, True, actor=_actor())
    print(f"enabled {args.name}")
    return EXIT_OK


def cmd_peer_disable(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        peers.set_enabled(conn, args.name, False, actor=_actor())
    print(f"disabled {args.name}; its tunnel stops within seconds")
    return EXIT_OK


def cmd_peer_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    vault, _ = _wireguard(settings)
    with _open(settings) as conn:
        peers.rotate(conn, args.name, vault=vault, actor=_actor())
        _print_config(settings, conn, args.name, qr=args.qr)
    return EXIT_OK


def cmd_peer_remove(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        peers.remove_peer(conn, args.name, actor=_actor())
    print(f"removed {args.name}")
    return EXIT_OK


def cmd_peer_link(args: argparse.Namespace) -> int:
    with _open(_settings(args)) as conn:
        token = peers.create_link(conn, args.name, actor=_actor())
    settings = _settings(args)
    listen = settings.listen
    addresses = machine_names(listen.host)
    print(
        names.web_url(
            f"/.gateway/peer/{token}",
            public_url=listen.public_url,
            names=names.own_names(public_url=listen.public_url, addresses=addresses),
            host=None,
            addresses=addresses,
            tls=settings.tls.enabled,
            web_port=listen.http_port,
        )
    )
    print(
        "# Open this link from the phone within 15 minutes; it works once. "
        "Set [listen] public_url if the phone knows the gateway by another address.",
        file=sys.stderr,
    )
    return EXIT_OK


# -- audit ------------------------------------------------------------------------------
def _parse_moment(text: str, option: str) -> float:
    """``--since``/``--until``: a duration back from now (7d) or a date (local time when it
    has no offset)."""
    try:
        return dt.datetime.now().timestamp() - durations.parse_duration(text)
    except durations.DurationError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"{option} '{text}' is neither a duration nor a date; examples: 7d, 2026-11-01, "
            "2026-11-01T08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


AUDIT_LIST_LIMIT = 1000


def cmd_audit(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    # A CSV export holds every matching entry unless told otherwise; a listing, the newest.
    limit = args.limit or (None if args.csv else AUDIT_LIST_LIMIT)
    since = _parse_moment(args.since, "--since") if args.since else None
    until = _parse_moment(args.until, "--until") if args.until else None
    with _open(_settings(args)) as conn:
        entries = audit_service.search(
            conn, user=args.user, event=args.event, since=since, until=until, limit=limit
        )
    if args.csv:
        sys.stdout.write(audit_service.as_csv(entries))
        return EXIT_OK
    if args.json:
        print(json.dumps([entry.__dict__ for entry in entries], indent=2))
        return EXIT_OK
    if not entries:
        if args.user or args.event:
            print("No audit entries match.")
        else:
            print("No audit entries" + (" in that period." if since or until else "."))
        return EXIT_OK
    for entry in entries:
        detail = " ".join(f"{key}={value}" for key, value in entry.detail.items())
        where = f" from {entry.client_address}" if entry.client_address else ""
        print(f"{_when(entry.at)}  {entry.event:<20} {entry.actor}{where}  {detail}")
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------
def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="the gateway's TOML configuration (default: $CEMM_GATEWAY_CONFIG, else built-in "
        "defaults and CEMM_GATEWAY_* environment variables)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cemm-gateway",
        description="Secure remote-access gateway for the CEMM energy management module.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the gateway")
    _config_option(run)
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo", help="run the gateway in front of the built-in CEMM simulator"
    )
    demo.add_argument(
        "--listen-host",
        default="127.0.0.1",
        help="address the demo gateway listens on (default 127.0.0.1; use 0.0.0.0 to try "
        "it from a phone on your LAN)",
    )
    demo.set_defaults(handler=cmd_demo)

    from gateway import simulator

    sim = commands.add_parser("simulator", help="run the CEMM simulator on its own")
    simulator.add_arguments(sim)
    sim.set_defaults(handler=cmd_simulator)

    allow = commands.add_parser("allow", help="manage the IP allowlist")
    allow_commands = allow.add_subparsers(dest="allow_command", required=True, metavar="ACTION")
    add = allow_commands.add_parser("add", help="allow a network or address")
    add.add_argument("network", help="IPv4/IPv6 network or address, e.g. 203.0.113.0/24")
    add.add_argument("--label", help="what this entry is for, e.g. 'office'")
    add.add_argument("--expires", metavar="DURATION", help="e.g. 12h, 7d, 2w (default: never)")
    _config_option(add)
    add.set_defaults(handler=cmd_allow_add)
    remove = allow_commands.add_parser("remove", help="remove an entry")
    remove.add_argument("network")
    _config_option(remove)
    remove.set_defaults(handler=cmd_allow_remove)
    listing = allow_commands.add_parser("list", help="show the entries")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _config_option(listing)
    listing.set_defaults(handler=cmd_allow_list)

    _add_user_commands(commands)
    _add_session_commands(commands)
    _add_token_commands(commands)
    _add_ban_commands(commands)
    _add_peer_commands(commands)

    audit = commands.add_parser("audit", help="show the audit log, newest first")
    audit.add_argument("--since", help="from: a duration back (7d) or a date (2026-11-01)")
    audit.add_argument("--until", help="up to (not including): a duration back or a date")
    audit.add_argument("--user", help="entries made by or about this user")
    audit.add_argument("--event", help="an event (user.add) or a family of them (user)")
    audit.add_argument(
        "--limit",
        type=int,
        help=f"at most this many, newest first (default: {AUDIT_LIST_LIMIT}; with --csv, all)",
    )
    output = audit.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument("--csv", action="store_true", help="CSV, as the admin page exports")
    _config_option(audit)
    audit.set_defaults(handler=cmd_audit)
    return parser


def _action(
    group: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help_text: str,
    *arguments: Argument,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    for flags, options in arguments:
        parser.add_argument(*flags, **options)
    _config_option(parser)
    parser.set_defaults(handler=handler)
    return parser


Argument = tuple[tuple[str, ...], dict[str, Any]]
_NAME: Argument = (("name",), {"help": "user name"})
_JSON: Argument = (("--json",), {"action": "store_true", "help": "machine-readable output"})
_STDIN: Argument = (
    ("--password-stdin",),
    {"action": "store_true", "help": "read the password from standard input (for scripts)"},
)


def _add_user_commands(commands: argparse._SubParsersAction) -> None:
    user = commands.add_parser("user", help="manage user accounts")
    group = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    _action(
        group,
        "add",
        cmd_user_add,
        "add a user (without --password-stdin: prompt, or a generated password printed once)",
        _NAME,
        (("--role",), {"choices": ["admin", "user"], "required": True}),
        (("--email",), {"help": "e-mail address, links a single sign-on account"}),
        _STDIN,
    )
    _action(group, "passwd", cmd_user_passwd, "set a new password", _NAME, _STDIN)
    _action(group, "disable", cmd_user_disable, "disable an account and end its sessions", _NAME)
    _action(group, "enable", cmd_user_enable, "enable an account", _NAME)
    _action(group, "remove", cmd_user_remove, "remove an account", _NAME)
    _action(
        group,
        "role",
        cmd_user_role,
        "change a user's role",
        _NAME,
        (("role",), {"choices": ["admin", "user"]}),
    )
    _action(group, "list", cmd_user_list, "list users", _JSON)
    _action(group, "reset-2fa", cmd_user_reset_2fa, "turn off a user's second factor", _NAME)


def _add_session_commands(commands: argparse._SubParsersAction) -> None:
    session = commands.add_parser("session", help="list and end login sessions")
    group = session.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    _action(
        group,
        "list",
        cmd_session_list,
        "list active sessions",
        (("--user",), {"help": "only this user's"}),
        _JSON,
    )
    _action(
        group,
        "revoke",
        cmd_session_revoke,
        "end a session (its WebSockets close too)",
        (("id",), {"nargs": "?", "help": "session ID from 'session list'"}),
        (("--user",), {"help": "end every session of this user"}),
    )


def _add_token_commands(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser("token", help="API tokens for scripts and Home Assistant")
    group = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    _action(
        group,
        "add",
        cmd_token_add,
        "create a token (printed once)",
        (("user",), {"help": "the user the token acts as"}),
        (("--name",), {"required": True, "help": "what it is for, e.g. 'home assistant'"}),
        (("--read-only",), {"action": "store_true", "help": "allow only GET and HEAD"}),
        (("--expires",), {"metavar": "DURATION", "help": "e.g. 90d (default: never)"}),
    )
    _action(
        group,
        "list",
        cmd_token_list,
        "list tokens",
        (("--user",), {"help": "only this user's"}),
        _JSON,
    )
    _action(group, "revoke", cmd_token_revoke, "revoke a token", (("id",), {"help": "token ID"}))


def _add_ban_commands(commands: argparse._SubParsersAction) -> None:
    ban = commands.add_parser("bans", help="bans after failed logins")
    group = ban.add_subparsers(dest="bans_command", required=True, metavar="ACTION")
    _action(group, "list", cmd_bans_list, "list active bans", _JSON)
    _action(
        group,
        "lift",
        cmd_bans_lift,
        "lift a ban",
        (("which",), {"help": "ban ID, address or user name"}),
    )


def _add_peer_commands(commands: argparse._SubParsersAction) -> None:
    peer = commands.add_parser("peer", help="WireGuard peers (phones)")
    group = peer.add_subparsers(dest="peer_command", required=True, metavar="ACTION")
    qr: Argument = (("--qr",), {"action": "store_true", "help": "also print a QR code"})
    peer_name: Argument = (("name",), {"help": "peer name, e.g. 'anna phone'"})
    _action(
        group,
        "add",
        cmd_peer_add,
        "add a peer and print its configuration once",
        peer_name,
        qr,
        (("--user",), {"help": "the user it belongs to"}),
        (("--public-key",), {"help": "the peer's own public key (no private key is made)"}),
        (
            ("--trusted",),
            {"action": "store_true", "help": "a trusted device: its tunnel address needs no login"},
        ),
        (("--expires",), {"metavar": "DURATION", "help": "e.g. 30d (default: never)"}),
    )
    _action(group, "list", cmd_peer_list, "list peers", _JSON)
    _action(group, "enable", cmd_peer_enable, "enable a peer", peer_name)
    _action(group, "disable", cmd_peer_disable, "disable a peer", peer_name)
    _action(
        group, "rotate", cmd_peer_rotate, "new keys; prints the new configuration", peer_name, qr
    )
    _action(group, "remove", cmd_peer_remove, "remove a peer", peer_name)
    _action(
        group, "link", cmd_peer_link, "a one-time link to the configuration (15 minutes)", peer_name
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (
        SettingsError,
        CommandError,
        durations.DurationError,
        allowlist_service.AllowlistError,
        users.UserError,
        api_tokens.TokenError,
        bans.BanError,
        peers.PeerError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except db.StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except sqlite3.Error as error:
        print(
            f"error: the database could not be written ({error}); nothing was changed. If the "
            "data directory's disk is full, free some space and try again.",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        from gateway.proxy.engine import EngineError

        if isinstance(error, EngineError):
            logging.getLogger("cemm_gateway").error("%s", error)
            return EXIT_FAILURE
        raise


if __name__ == "__main__":
    sys.exit(main())

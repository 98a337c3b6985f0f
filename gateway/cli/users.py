"""``cemm-gateway user``: accounts (add, passwd, disable, enable, remove, role, list,
reset-2fa). A password comes from standard input (``--password-stdin``), a prompt on a
terminal, or is generated and printed once."""

from __future__ import annotations

import argparse
import getpass
import sys

from gateway.auth import passwords
from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError, actor, open_db
from gateway.services import passkeys, users

_NAME: common.Argument = (("name",), {"help": "user name"})
_STDIN: common.Argument = (
    ("--password-stdin",),
    {"action": "store_true", "help": "read the password from standard input (for scripts)"},
)


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


def cmd_add(args: argparse.Namespace) -> int:
    users.check_name(args.name)
    users.check_role(args.role)
    password, generated = _read_password(args, args.name)
    with open_db(common.settings(args)) as conn:
        user = users.add_user(
            conn, args.name, role=args.role, password=password, actor=actor(), email=args.email
        )
    print(f"added {user.role} {user.name}")
    if generated:
        print(f"password: {password}  (shown once)")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        users.require_user(conn, args.name)
        password, generated = _read_password(args, args.name)
        users.set_password(conn, args.name, password, actor=actor())
    print(f"password of {args.name} changed; its sessions were ended")
    if generated:
        print(f"password: {password}  (shown once)")
    return EXIT_OK


def cmd_disable(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        users.set_disabled(conn, args.name, True, actor=actor())
    print(f"disabled {args.name}; its sessions were ended")
    return EXIT_OK


def cmd_enable(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        users.set_disabled(conn, args.name, False, actor=actor())
    print(f"enabled {args.name}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        users.remove_user(conn, args.name, actor=actor())
    print(f"removed {args.name}")
    return EXIT_OK


def cmd_role(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        user = users.set_role(conn, args.name, args.role, actor=actor())
    print(f"{user.name} is now {user.role}")
    return EXIT_OK


def cmd_reset_2fa(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        removed = passkeys.reset_second_factor(conn, args.name, actor=actor())
    print(f"two-step verification of {args.name} is off; they can set it up again")
    if removed:
        print(f"removed {removed} passkey{'s' if removed != 1 else ''} of {args.name}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
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
    return common.print_list(
        ("NAME", "ROLE", "STATE", "2FA", "SIGN-IN", "EMAIL"),
        rows,
        [user.__dict__ for user in found],
        as_json=args.json,
    )


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "user", "manage user accounts")
    common.action(
        group,
        "add",
        cmd_add,
        "add a user (without --password-stdin: prompt, or a generated password printed once)",
        _NAME,
        (("--role",), {"choices": list(users.ROLES), "required": True}),
        (("--email",), {"help": "e-mail address, links a single sign-on account"}),
        _STDIN,
    )
    common.action(group, "passwd", cmd_passwd, "set a new password", _NAME, _STDIN)
    common.action(group, "disable", cmd_disable, "disable an account and end its sessions", _NAME)
    common.action(group, "enable", cmd_enable, "enable an account", _NAME)
    common.action(group, "remove", cmd_remove, "remove an account", _NAME)
    common.action(
        group,
        "role",
        cmd_role,
        "change a user's role",
        _NAME,
        (("role",), {"choices": list(users.ROLES)}),
    )
    common.action(group, "list", cmd_list, "list users", common.JSON)
    common.action(group, "reset-2fa", cmd_reset_2fa, "turn off a user's second factor", _NAME)

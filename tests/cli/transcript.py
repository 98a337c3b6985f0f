"""A fixed session at the ``cemm-gateway`` command, run in-process and written down.

Every command of the management CLI runs once or more against a fresh data directory, with
the clock frozen (it moves one minute per command), secrets drawn from a seeded generator,
the time zone, terminal width and user name fixed. What each command printed on standard
output and standard error, and its exit code, is the transcript; ``transcript.txt`` holds
the recorded one and ``test_transcript.py`` compares a fresh run with it byte for byte.

A change that alters what the CLI prints re-records it on purpose::

    .venv/bin/python -m tests.cli.transcript > tests/cli/transcript.txt

and says so in its commit message. Usage and help texts are argparse's, so a Python
release that words them differently (3.13 is the project's) changes them too.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import random
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

START = 1_795_000_000.0  # 2026-11-18, a Wednesday
STEP = 60.0
SEED = 20261118
TIME_ZONE = "CET-1CEST,M3.5.0,M10.5.0/3"  # local time in the output; no tz database needed


@dataclass(frozen=True)
class Command:
    args: tuple[str, ...]
    config: str | None = "main"  # which configuration file; None: no --config at all
    stdin: str = ""
    config_first: bool = False  # --config before the subcommand, not after it


@dataclass(frozen=True)
class Setup:
    """A change the CLI cannot make (a login, failed logins), made through the services."""

    what: str


def _c(
    *args: str, config: str | None = "main", stdin: str = "", config_first: bool = False
) -> Command:
    return Command(args, config, stdin, config_first)


PASSWORD = "a long password 1\n"

SESSION: Sequence[Command | Setup] = (
    # Lists of nothing.
    _c("allow", "list"),
    _c("allow", "list", "--json"),
    _c("user", "list"),
    _c("user", "list", "--json"),
    _c("session", "list"),
    _c("token", "list"),
    _c("bans", "list"),
    _c("peer", "list"),
    _c("audit"),
    # The allowlist.
    _c("allow", "add", "203.0.113.0/24", "--label", "office", "--expires", "7d"),
    _c("allow", "add", "198.51.100.7"),
    _c("allow", "add", "198.51.100.7", "--label", "home", "--expires", "12h"),
    _c("allow", "add", "198.51.100.7/32", "--label", "home", "--expires", "12h"),
    _c("allow", "add", "2001:db8::/32", "--label", "a wide label"),
    _c("allow", "add", "10.0.0.300/24"),
    _c("allow", "add", "cemm.example.org"),
    _c("allow", "add", "203.0.113.9", "--expires", "soon"),
    _c("allow", "add", "203.0.113.9", "--expires", "0d"),
    _c("allow", "list"),
    _c("allow", "list", "--json"),
    _c("allow", "remove", "198.51.100.7"),
    _c("allow", "remove", "198.51.100.7"),
    _c("allow", "remove", "not-a-network"),
    # Users.
    _c("user", "add", "anna", "--role", "admin", "--email", "anna@example.org"),
    _c("user", "add", "bert", "--role", "user", "--password-stdin", stdin=PASSWORD),
    _c("user", "add", "carla", "--role", "user", "--password-stdin", stdin="\n"),
    _c("user", "add", "bert", "--role", "user", "--password-stdin", stdin=PASSWORD),
    _c("user", "add", "bad name!", "--role", "user", "--password-stdin", stdin=PASSWORD),
    _c("user", "add", "dora", "--role", "owner"),
    _c("user", "add", "dora", "--role", "user", "--password-stdin", stdin="short\n"),
    _c("user", "list"),
    _c("user", "list", "--json"),
    _c("user", "role", "bert", "admin"),
    _c("user", "role", "bert", "user"),
    _c("user", "role", "nobody", "user"),
    _c("user", "role", "anna", "user"),
    _c("user", "disable", "bert"),
    _c("user", "disable", "nobody"),
    _c("user", "enable", "bert"),
    _c("user", "passwd", "bert"),
    _c("user", "passwd", "bert", "--password-stdin", stdin=PASSWORD),
    _c("user", "passwd", "nobody", "--password-stdin", stdin=PASSWORD),
    _c("user", "reset-2fa", "bert"),
    _c("user", "reset-2fa", "nobody"),
    _c("user", "remove", "anna"),
    _c("user", "list"),
    # Sessions: logins made through the services, as the portal would.
    Setup("login anna from 192.168.1.20, bert twice"),
    _c("session", "list"),
    _c("session", "list", "--user", "bert"),
    _c("session", "list", "--user", "nobody"),
    _c("session", "list", "--json"),
    _c("session", "revoke"),
    _c("session", "revoke", "abc", "--user", "bert"),
    _c("session", "revoke", "no-such-session"),
    _c("session", "revoke", "--user", "bert"),
    _c("session", "revoke", "--user", "nobody"),
    _c("session", "list"),
    # API tokens.
    _c("token", "add", "bert", "--name", "home assistant"),
    _c("token", "add", "anna", "--name", "dashboard", "--read-only", "--expires", "90d"),
    _c("token", "add", "nobody", "--name", "x"),
    _c("token", "add", "bert", "--name", "x", "--expires", "soon"),
    _c("token", "list"),
    _c("token", "list", "--user", "anna"),
    _c("token", "list", "--json"),
    _c("token", "revoke", "no-such-token"),
    Setup("revoke the token of anna"),
    _c("token", "list"),
    # Bans: failed logins made through the services.
    Setup("ban user bert and address 203.0.113.50"),
    _c("bans", "list"),
    _c("bans", "list", "--json"),
    _c("bans", "lift", "nobody"),
    _c("bans", "lift", "bert"),
    _c("bans", "lift", "203.0.113.50"),
    _c("bans", "list"),
    # WireGuard peers: refused while it is off, then with it on (no interface needed).
    _c("peer", "add", "anna phone", config="plain"),
    _c("peer", "add", "anna phone", "--user", "anna"),
    _c("peer", "add", "bert laptop", "--qr", "--trusted", "--expires", "30d"),
    _c("peer", "add", "own key", "--public-key", "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="),
    _c("peer", "add", "bad key", "--public-key", "not-a-key"),
    _c("peer", "add", "anna phone"),
    _c("peer", "add", "x", "--user", "nobody"),
    _c("peer", "add", "bad/name"),
    _c("peer", "list"),
    _c("peer", "list", "--json"),
    _c("peer", "disable", "anna phone"),
    _c("peer", "enable", "anna phone"),
    _c("peer", "disable", "nobody"),
    _c("peer", "rotate", "anna phone"),
    _c("peer", "rotate", "own key"),
    _c("peer", "link", "anna phone"),
    _c("peer", "link", "nobody"),
    _c("peer", "remove", "bert laptop"),
    _c("peer", "remove", "bert laptop"),
    _c("peer", "list"),
    # The audit log.
    _c("audit", "--limit", "5"),
    _c("audit", "--user", "bert", "--event", "user"),
    _c("audit", "--event", "allowlist", "--json"),
    _c("audit", "--since", "2h", "--until", "1h"),
    _c("audit", "--since", "2026-11-18T08:00", "--until", "2026-11-18T09:00+01:00"),
    _c("audit", "--since", "2026-11-19"),
    _c("audit", "--since", "1d", "--event", "peer", "--csv"),
    _c("audit", "--csv", "--limit", "3"),
    _c("audit", "--user", "nobody"),
    _c("audit", "--until", "soon"),
    _c("audit", "--since", "yesterday"),
    _c("audit", "--limit", "0"),
    _c("audit", "--json", "--csv"),
    # Usage errors and configuration errors.
    _c("user", config=None),
    _c("user"),
    _c("user", "frobnicate"),
    _c("frobnicate"),
    _c("user", "add", "erik"),
    _c("--help", config=None),
    _c("token", "add", "--help", config=None),
    _c("audit", "--help", config=None),
    _c("allow", "list", config="missing"),
    _c("allow", "list", config="bad"),
    _c("allow", "list", config="not-toml"),
    # --config before the subcommand, or between a command and its action.
    _c("user", "list", config_first=True),
    _c("token", "list", "--config", "<main>", config=None),
    _c("bans", "--config", "<main>", "list", config=None),
    _c("user", "list", "--config", "<missing>", config="main", config_first=True),
    # check: the configuration as 'run' validates it.
    _c("check", config="good"),
    _c("check", config="main"),
    _c("check", config="bad"),
    _c("check", config="missing"),
    _c("check", config="oidc"),
    _c("check", config="good", config_first=True),
    _c("check", "--help", config=None),
    # The remaining successes: ids as the seeded secrets made them.
    _c("user", "add", "erik", "--role", "user", "--password-stdin", stdin=PASSWORD),
    _c("user", "remove", "erik"),
    _c("token", "revoke", "4q8zymg2"),
    _c("token", "revoke", "4q8zymg2"),
    _c("session", "revoke", "09Jq7Nj1z3yX"),
    _c("audit", "--limit", "6"),
    # Notifications: no receiver is configured.
    _c("notify", "test"),
    # The viewer role, scoped tokens and guest links (after the rest: the seeded secrets
    # above stay as they were).
    _c("user", "add", "vera", "--role", "viewer", "--password-stdin", stdin=PASSWORD),
    _c("token", "add", "vera", "--name", "ha", "--scope", "/api/v1/public/", "--scope", "/live"),
    _c("token", "add", "vera", "--name", "x", "--scope", "/api/../x"),
    _c("token", "list", "--user", "vera"),
    _c("guest", "list"),
    _c("guest", "add", "installer Jan", "--role", "viewer", "--expires", "8h"),
    _c(
        "guest",
        "add",
        "installer Piet",
        "--role",
        "user",
        "--expires",
        "2030-06-01T17:00",
        "--browsers",
        "2",
    ),
    _c("guest", "add", "installer Jan", "--expires", "soon"),
    _c("guest", "add", "installer Jan", "--role", "admin", "--expires", "8h"),
    _c("guest", "list"),
    _c("guest", "list", "--json"),
    _c("guest", "revoke", "1"),
    _c("guest", "revoke", "1"),
    _c("guest", "revoke", "99"),
    _c("guest", "add", "--help", config=None),
    _c("audit", "--limit", "4"),
    # backup: help, and a backup file that is not there.
    _c("backup", "--help", config=None),
    _c("backup", "restore", "--help", config=None),
    _c("backup", "verify", "<missing>", "--passphrase-file", "<missing>"),
    # cert: the ACME certificate; off here, and a configuration check refuses ACME without TLS.
    _c("cert", "status"),
    _c("cert", "--help", config=None),
    _c("check", config="acme"),
    _c("check", config="acme-and-cert"),
    # ACME DNS-01: the hook or a DNS provider's API (dns-lexicon), one of them, known options.
    _c("check", config="acme-dns-neither"),
    _c("check", config="acme-dns-both"),
    _c("check", config="acme-dns-unknown-provider"),
    _c("check", config="acme-dns-unknown-option"),
    _c("check", config="acme-dns-provider"),
    # allow add: 0.0.0.0/0, ::/0 or a public network wider than /16 needs --yes.
    _c("allow", "add", "--help", config=None),
    _c("allow", "add", "0.0.0.0/0"),
    _c("allow", "add", "2000::/3"),
    _c("allow", "add", "8.0.0.0/8", "--yes", "--label", "on purpose"),
    _c("allow", "add", "10.0.0.0/8"),
    _c("allow", "remove", "8.0.0.0/8"),
    _c("allow", "remove", "10.0.0.0/8"),
    # Passkeys: made through the services (a browser makes them), listed and removed here;
    # reset-2fa removes them too.
    _c("passkey", "list"),
    Setup("passkeys: bert's phone and key, vera's laptop"),
    _c("passkey", "list"),
    _c("passkey", "list", "--user", "vera", "--json"),
    _c("passkey", "list", "--user", "nobody"),
    _c("passkey", "remove", "3"),
    _c("passkey", "remove", "3"),
    _c("passkey", "remove", "x"),
    _c("user", "reset-2fa", "bert"),
    _c("passkey", "list"),
    _c("audit", "--event", "passkey"),
    _c("passkey", "--help", config=None),
)

CONFIGS = {
    "main": (
        'data_dir = "{data}"\n'
        "[listen]\n"
        'public_url = "https://cemm.example.org"\n'
        "[wireguard]\n"
        "enabled = true\n"
        'endpoint = "home.example.org:51820"\n'
    ),
    "plain": 'data_dir = "{data}"\n',
    "bad": 'data_dir = "{data}"\n[listen]\nhttp_port = -1\n[allowlist]\ndefault_network = []\n',
    "not-toml": "data_dir = \n",
    "good": 'data_dir = "{data}"\n[upstream]\nhost = "192.168.2.34"\n',
    "oidc": 'data_dir = "{data}"\n[upstream]\nhost = "192.168.2.34"\n[oidc]\nenabled = true\n',
    "acme": (
        'data_dir = "{data}"\n[upstream]\nhost = "192.168.2.34"\n'
        '[acme]\nenabled = true\ndomains = ["cemm.example.org"]\n'
    ),
    "acme-and-cert": (
        'data_dir = "{data}"\n[upstream]\nhost = "192.168.2.34"\n'
        '[tls]\nenabled = true\ncert = "/data/tls/fullchain.pem"\nkey = "/data/tls/privkey.pem"\n'
        '[acme]\nenabled = true\ndomains = ["cemm.example.org"]\n'
    ),
    **{
        f"acme-dns-{name}": (
            'data_dir = "{data}"\n[upstream]\nhost = "192.168.2.34"\n[tls]\nenabled = true\n'
            '[acme]\nenabled = true\ndomains = ["cemm.example.org"]\nchallenge = "dns-01"\n' + extra
        )
        for name, extra in {
            "neither": "",
            "both": 'dns_hook = "/data/hook"\n[acme.dns]\nprovider = "desec"\n',
            "unknown-provider": '[acme.dns]\nprovider = "powerdsn"\n',
            "unknown-option": '[acme.dns]\nprovider = "desec"\napi_token = "x"\n',
            "provider": (
                '[acme.dns]\nprovider = "desec"\nauth_token_file = "/run/secrets/desec"\n'
            ),
        }.items()
    },
}


class FrozenClock:
    def __init__(self) -> None:
        self.now_value = START

    def now(self) -> float:
        return self.now_value


@contextlib.contextmanager
def _environment(clock: FrozenClock) -> Iterator[None]:
    """Fixed time, time zone, secrets, terminal width and user for everything in-process."""
    from gateway import clock as clock_module
    from gateway.wireguard import keys

    generator = random.Random(SEED)

    def token_bytes(n: int | None = None) -> bytes:
        return generator.randbytes(32 if n is None else n)

    def token_urlsafe(n: int | None = None) -> str:
        return base64.urlsafe_b64encode(token_bytes(n)).rstrip(b"=").decode("ascii")

    def token_hex(n: int | None = None) -> str:
        return token_bytes(n).hex()

    def private_key() -> str:
        return base64.b64encode(generator.randbytes(32)).decode()

    saved_tz = os.environ.get("TZ")
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            mock.patch.dict(
                os.environ,
                {
                    "TZ": TIME_ZONE,
                    "COLUMNS": "100",
                    "LOGNAME": "operator",
                    "USER": "operator",
                    # argparse colours its help from Python 3.14 on, unless told not to.
                    "NO_COLOR": "1",
                    "PYTHON_COLORS": "0",
                },
            )
        )
        # patch.dict restores the whole environment on the way out.
        for name in [n for n in os.environ if n.startswith("CEMM_GATEWAY_")]:
            del os.environ[name]
        time.tzset()
        stack.callback(_restore_tz, saved_tz)
        stack.enter_context(mock.patch.object(secrets, "token_bytes", token_bytes))
        stack.enter_context(mock.patch.object(secrets, "token_urlsafe", token_urlsafe))
        stack.enter_context(mock.patch.object(secrets, "token_hex", token_hex))
        stack.enter_context(mock.patch.object(secrets, "choice", generator.choice))
        stack.enter_context(mock.patch.object(keys, "generate_private_key", private_key))
        stack.enter_context(
            mock.patch.object(clock_module.SystemClock, "now", lambda self: clock.now())
        )
        yield


def _restore_tz(saved: str | None) -> None:
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def _setup(what: str, data: Path) -> None:
    from gateway.auth.bruteforce import BruteForcePolicy
    from gateway.services import api_tokens, bans, sessions, users
    from gateway.store import db

    conn = db.connect(data / "gateway.db")
    try:
        if what.startswith("login"):
            for name, address, agent in (
                ("anna", "192.168.1.20", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 long"),
                ("bert", "2001:db8::7", None),
                ("bert", None, "curl/8.5"),
            ):
                user = users.require_user(conn, name)
                sessions.create_session(
                    conn,
                    user,
                    lifetime=86400.0,
                    client_address=address,
                    user_agent=agent,
                    method="password",
                )
        elif what.startswith("revoke"):
            token = api_tokens.list_tokens(conn, user_name="anna")[0]
            api_tokens.revoke_token(conn, token.id, actor="admin")
        elif what.startswith("ban"):
            policy = BruteForcePolicy(ban_after=1)
            for subject in (["user:bert"], ["address:203.0.113.50"]):
                bans.record_failure(
                    conn,
                    subject,
                    policy,
                    client_address="203.0.113.50",
                    user_agent=None,
                    user_name="bert",
                )
        elif what.startswith("passkeys"):
            _make_passkeys(conn)
        else:
            raise ValueError(what)
    finally:
        conn.close()


def _make_passkeys(conn: object) -> None:
    from gateway.policy.passkeys import RelyingParty
    from gateway.services import passkeys, users
    from tests.support.authenticator import SoftAuthenticator

    rp = RelyingParty("cemm.example.org", "https://cemm.example.org")
    for name, label in (("bert", "phone"), ("bert", "security key"), ("vera", "laptop")):
        user = users.require_user(conn, name)  # type: ignore[arg-type]
        ceremony = passkeys.registration_options(conn, user, rp)  # type: ignore[arg-type]
        answer = SoftAuthenticator().create(ceremony.options, rp.origin)
        passkeys.finish_registration(conn, user.id, ceremony, answer, name=label, actor=name)  # type: ignore[arg-type]


def _run(command: Command, configs: dict[str, Path]) -> tuple[str, str, int]:
    from gateway.cli import main

    # "<name>" in the arguments is the path of that configuration file.
    argv = [str(configs[arg[1:-1]]) if arg[:1] == "<" else arg for arg in command.args]
    if command.config is not None:
        option = ["--config", str(configs[command.config])]
        argv = [*option, *argv] if command.config_first else [*argv, *option]
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        mock.patch.object(sys, "stdin", io.StringIO(command.stdin)),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return stdout.getvalue(), stderr.getvalue(), code


def _shown(command: Command) -> str:
    """The command line as the transcript shows it: a configuration by its file name."""
    words = [f"{arg[1:-1]}.toml" if arg[:1] == "<" else arg for arg in command.args]
    shown = " ".join(shlex.quote(word) for word in words)
    if command.config is None:
        return shown
    if command.config_first:
        return f"--config {command.config}.toml {shown}"
    return f"{shown} --config {command.config}.toml"


def _block(label: str, text: str) -> list[str]:
    """``text`` as ``| ``-prefixed lines; a carriage return shows as ``<CR>`` (the CSV export
    ends its lines with one), a missing final newline as a line of its own."""
    if not text:
        return [f"{label}: (empty)"]
    body, complete = (text[:-1], True) if text.endswith("\n") else (text, False)
    lines = [f"{label}:"] + ["| " + line.replace("\r", "<CR>") for line in body.split("\n")]
    return lines if complete else [*lines, "(no newline at end)"]


def record() -> str:
    """Run the session in a fresh temporary directory and return the transcript."""
    with tempfile.TemporaryDirectory(prefix="cli-transcript-") as temporary:
        root = Path(temporary)
        data = root / "data"
        configs: dict[str, Path] = {}
        for name, text in CONFIGS.items():
            path = root / f"{name}.toml"
            path.write_text(text.format(data=data))
            configs[name] = path
        configs["missing"] = root / "missing.toml"
        clock = FrozenClock()
        out: list[str] = []
        with _environment(clock):
            for step in SESSION:
                clock.now_value += STEP
                if isinstance(step, Setup):
                    _setup(step.what, data)
                    out += [f"## setup: {step.what}", ""]
                    continue
                stdout, stderr, code = _run(step, configs)
                if step.stdin:
                    out.append(f"## stdin: {step.stdin!r}")
                out.append(f"$ cemm-gateway {_shown(step)}")
                out += _block("stdout", stdout)
                out += _block("stderr", stderr)
                out += [f"exit: {code}", ""]
        return "\n".join(out).replace(str(root), "<tmp>") + "\n"


if __name__ == "__main__":
    sys.stdout.write(record())

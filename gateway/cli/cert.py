"""``cemm-gateway cert``: the ACME certificate - ``status`` (issuer, names, expiry, the
last attempt and its error) and ``renew`` (ask the running gateway to order now and wait
for the result). Both read the files in ``<data dir>/acme/``; neither needs the database.
"""

from __future__ import annotations

import argparse
import json
import time

from gateway.acme.manager import AcmeManager
from gateway.acme.status import CertificateStatus
from gateway.acme.storage import AcmeStorage
from gateway.cli import common
from gateway.cli.common import EXIT_FAILURE, EXIT_OK, CommandError, when
from gateway.settings import Settings

RENEW_WAIT = 300.0


def _manager(settings: Settings) -> AcmeManager:
    if not settings.acme.enabled:
        raise CommandError(
            "ACME is off; set [acme] enabled = true (with [tls] enabled and domains) to have "
            "the gateway order its certificate"
        )
    return AcmeManager(settings.acme, AcmeStorage(settings.data_dir))


def _as_dict(status: CertificateStatus) -> dict[str, object]:
    attempt = status.last_attempt
    return {
        "issued": status.issued,
        "issuer": status.issuer,
        "names": list(status.names),
        "not_after": status.not_after.isoformat() if status.not_after else None,
        "renew_at": status.renew_at.isoformat() if status.renew_at else None,
        "last_attempt": (
            {"at": attempt.at, "ok": attempt.ok, "error": attempt.error} if attempt else None
        ),
    }


def _print(status: CertificateStatus) -> None:
    if status.not_after is None:
        print("Certificate: none yet (the gateway makes a stand-in when it starts).")
    elif not status.issued:
        print("Certificate: a self-signed stand-in, until the first order succeeds.")
    else:
        print(f"Certificate: issued by {status.issuer}")
    if status.names:
        print(f"Names:       {', '.join(status.names)}")
    if status.not_after is not None:
        print(f"Expires:     {when(status.not_after.timestamp())}")
    if status.renew_at is not None:
        print(f"Renewal:     {when(status.renew_at.timestamp())}")
    attempt = status.last_attempt
    if attempt is None:
        print("Last order:  none yet")
    elif attempt.ok:
        print(f"Last order:  {when(attempt.at)}, succeeded")
    else:
        print(f"Last order:  {when(attempt.at)}, failed: {attempt.error}")


def cmd_status(args: argparse.Namespace) -> int:
    status = _manager(common.settings(args)).status()
    if args.json:
        print(json.dumps(_as_dict(status), indent=2))
    else:
        _print(status)
    return EXIT_OK


def cmd_renew(args: argparse.Namespace) -> int:
    manager = _manager(common.settings(args))
    asked = time.time()
    manager.storage.request_renewal()
    print("Asked the running gateway to order a certificate now; waiting for the result...")
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        attempt = manager.storage.last_attempt()
        if attempt is not None and attempt.at >= asked:
            _print(manager.status())
            return EXIT_OK if attempt.ok else EXIT_FAILURE
        time.sleep(0.5)
    raise CommandError(
        f"no result within {args.wait:g} s; is the gateway running? The request stays in "
        f"{manager.storage.renew_request} until it is."
    )


def register(commands: common.Commands) -> None:
    actions = common.resource(commands, "cert", "the ACME certificate: status, renew")
    status = actions.add_parser("status", help="issuer, names, expiry and the last order")
    status.add_argument(*common.JSON[0], **common.JSON[1])
    common.config_option(status)
    status.set_defaults(handler=cmd_status)
    renew = actions.add_parser("renew", help="order a certificate now and wait for the result")
    renew.add_argument(
        "--wait",
        type=float,
        default=RENEW_WAIT,
        help=f"seconds to wait for the result (default {RENEW_WAIT:g})",
    )
    common.config_option(renew)
    renew.set_defaults(handler=cmd_renew)

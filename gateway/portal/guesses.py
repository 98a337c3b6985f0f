"""How a portal route asks the gate (:mod:`gateway.services.bans`) before it checks a secret.

``await guess(request, account=..., verify=...)`` reserves the attempt (refused: raises
:class:`GuessRefused`, the secret is never looked at), waits until the attempt's turn,
runs ``verify`` on the database thread, and settles the attempt as a success (``verify``
returned something) or a failure (it returned None or raised). The account's ban is not
applied to a known device of that account (the device cookie, :mod:`gateway.services.devices`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response

from gateway.services import bans, devices
from gateway.web.context import WebContext, client_address, user_agent

DEVICE_COOKIE = "cemm_device"
DEVICE_COOKIE_TLS = "__Secure-cemm_device"
DEVICE_COOKIE_PATH = "/.gateway/"


class GuessRefused(Exception):
    """The gate refused the guess; the same answer whatever the secret was."""

    def __init__(self, until: float) -> None:
        super().__init__("Too many failed attempts.")
        self.until = until

    @property
    def retry_after(self) -> int:
        return max(1, int(self.until - time.time() + 0.999))


def _context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def device_cookie_name(request: Request) -> str:
    return DEVICE_COOKIE_TLS if _context(request).secure_cookies(request) else DEVICE_COOKIE


def device_token(request: Request) -> str | None:
    return request.cookies.get(device_cookie_name(request))


def _reserve(
    conn: sqlite3.Connection,
    context: WebContext,
    account: str,
    address: str,
    device: str | None,
) -> bans.Attempt | bans.Refusal:
    checked = bans.subjects(account, address, context.never_ban)
    also_counted: list[str] = []
    device_id = devices.known_device(conn, device, account) if account else None
    if device_id is not None:
        user_subject = checked.pop(0)
        checked.insert(0, bans.device_subject(device_id))
        also_counted.append(user_subject)
    return bans.reserve(
        conn, checked, context.bruteforce, now=time.time(), also_counted=also_counted
    )


async def guess[T](
    request: Request, *, account: str, verify: Callable[[sqlite3.Connection], T | None]
) -> T | None:
    """One guess of a secret of ``account`` ("" for a secret that names no account, such as
    a peer-link token: then only the address counts). Returns what ``verify`` returned
    (None: wrong); raises :class:`GuessRefused` without calling ``verify``."""
    context = _context(request)
    address = client_address(request)
    reserved = await context.db.run(
        _reserve, context, account.strip(), address, device_token(request)
    )
    if isinstance(reserved, bans.Refusal):
        raise GuessRefused(reserved.until)
    wait = reserved.not_before - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    result: T | None = None
    try:
        result = await context.db.run(verify)
    finally:
        await context.db.run(
            bans.settle,
            reserved,
            context.bruteforce,
            succeeded=result is not None,
            client_address=address,
            user_agent=user_agent(request),
            user_name=account,
        )
    return result


async def remember_device(request: Request, user_id: int, response: Response) -> None:
    """After a completed login: the device cookie, so later bans of the account spare it."""
    context = _context(request)
    token = await context.db.run(devices.remember_device, device_token(request), user_id)
    response.set_cookie(
        device_cookie_name(request),
        token,
        max_age=devices.DEVICE_COOKIE_LIFETIME,
        path=DEVICE_COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=context.secure_cookies(request),
    )


def refusal_headers(refused: GuessRefused) -> dict[str, Any]:
    return {"Retry-After": str(refused.retry_after)}

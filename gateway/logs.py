"""Logging set-up: readable text by default, JSON lines for log collectors.

mitmproxy logs every connection at INFO; its loggers are held at WARNING so the gateway's
log says what matters (denials, policy changes, upstream trouble) and the hot path does
not pay for formatting lines nobody reads.

Request ids: the request-log addon (``addons/request_log.py``) gives every proxied request
an id and sets :data:`request_id` while the proxy's hooks handle it, so every line logged
meanwhile carries it (``"request_id"`` in JSON, ``[req=...]`` in text); the optional access
log (``[log] access = true``) writes one line per request with the same id. Structured
fields go in ``extra={"fields": {...}}``.

No secrets in the log: both formats pass every line, exception text included, through
:func:`redact`, which blanks what looks like a credential - ``Authorization`` / ``Cookie``
/ ``Set-Cookie`` values, bearer and basic credentials, the gateway's API tokens
(``cgw_...``) and session cookie, ``password=`` / ``secret=`` / ``..._token=`` values, and
credential-carrying query parameters (``?code=``, ``?state=``, ``?token=``, ...), the
secret part of one-time link paths (:data:`SECRET_PATH_PREFIXES`: ``/.gateway/peer/<token>``)
- plus any value registered with :func:`register_secret` (the metrics scrape token). The code also
avoids logging such values in the first place; this is the second line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from typing import Any
from urllib.parse import unquote

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cemm_gateway_request_id", default=None
)

REDACTED = "[redacted]"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-cemm-gateway-internal)"
            r"\b(['\"]?\s*[:=]\s*)(['\"]?)[^'\"\r\n]*"
        ),
        rf"\1\2\3{REDACTED}",
    ),
    (re.compile(r"\bcgw_[A-Za-z0-9_]+"), f"cgw_{REDACTED}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)\b((?:__Host-)?cemm_session)=[^;\s'\"&]+"), rf"\1={REDACTED}"),
    (
        re.compile(
            r"(?i)([?&;](?:code|state|token|access_token|id_token|refresh_token|password|"
            r"passwd|secret|client_secret|session|key|api_key|csrf_token)=)[^&\s'\"#]+"
        ),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(
            r"(?i)\b(\w*(?:password|passwd|secret|token))(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}&]+"
        ),
        rf"\1\2{REDACTED}",
    ),
)
_secrets: set[str] = set()

#: Paths whose next segment is itself a secret (one-time links): the prefix is logged, the
#: rest of the path is not. Features that hand out such links add their prefix here.
SECRET_PATH_PREFIXES: tuple[str, ...] = ("/.gateway/peer/", "/.gateway/guest/")
_SECRET_PATH = re.compile(
    "(" + "|".join(re.escape(prefix) for prefix in SECRET_PATH_PREFIXES) + r")[^\s'\"#?]+"
)


def register_secret(value: str) -> None:
    """Never log ``value`` (a configured token): it is replaced wherever it appears."""
    if len(value) >= 8:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with everything that looks like a credential replaced by ``[redacted]``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _SECRET_PATH.sub(rf"\1{REDACTED}", text)


#: An ACME HTTP-01 challenge path: its token is logged by its first eight characters only.
_CHALLENGE_PATH = re.compile(r"(/\.well-known/acme-challenge/)([^\s'\"#?]{8})[^\s'\"#?]+")


def loggable_path(path: str) -> str:
    """A request path as it may be logged: without its query (queries carry login codes
    and tokens) and, where it leads to a secret-bearing path however it is percent-encoded
    (the web app decodes ``%70eer`` to ``peer`` before routing), as that path redacted.
    An ACME challenge token keeps its first eight characters (enough to match an order),
    the rest is redacted - in the access log, the proxy log and the audit alike."""
    path = path.split("?", 1)[0]
    decoded = unquote(path)
    if _SECRET_PATH.search(decoded):
        return _SECRET_PATH.sub(rf"\1{REDACTED}", decoded).encode("unicode_escape").decode()
    if _CHALLENGE_PATH.search(decoded):
        cut = _CHALLENGE_PATH.sub(rf"\1\2{REDACTED}", decoded)
        return cut.encode("unicode_escape").decode()
    return path


def _request_id(record: logging.LogRecord) -> str | None:
    value = getattr(record, "request_id", None)
    return value if isinstance(value, str) else request_id.get()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if extras:
            first, newline, rest = text.partition("\n")
            text = f"{first} {extras}{newline}{rest}"
        rid = _request_id(record)
        if rid:
            first, newline, rest = text.partition("\n")
            text = f"{first} [req={rid}]{newline}{rest}"
        return redact(text)


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = _request_id(record)
        if rid:
            entry["request_id"] = rid
        for key, value in _fields(record).items():
            if key not in entry:
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = "DEBUG" if level == "debug" else "WARNING"
    for name in (
        "mitmproxy",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "websockets",
        "httpx",  # one line per health check and OIDC call otherwise
        "httpcore",
    ):
        logging.getLogger(name).setLevel(quiet)

"""A session's device as a person names it: "Chrome on Android", "Safari on iOS".

The ``User-Agent`` header is read by ``ua-parser`` (the maintained Python port of the
uap-core rules; its rules package is updated monthly), not by patterns of our own: browsers
change their strings more often than this project would. Only the browser's and the
system's family are shown (no versions: they say little to an owner and change weekly).
A client that names no known browser - ``curl``, a script, an app - is shown by the first
word it sent, and no header at all as "Unknown device".
"""

from __future__ import annotations

from functools import lru_cache

from gateway.web.i18n import gettext as _

__all__ = ["browser_name"]

# uap-core's family names that say more than a person needs ("Chrome Mobile" is Chrome).
_SIMPLER = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Samsung Internet": "Samsung Internet",
    "Mac OS X": "macOS",
}


@lru_cache(maxsize=256)
def browser_name(user_agent: str | None) -> str:
    """``Chrome on Android``; ``Firefox``; ``curl``; ``Unknown device``."""
    text = (user_agent or "").strip()
    if not text or text == "-":
        return _("Unknown device")
    # Imported at first use: its rules take a while to load, and most pages show no device.
    from ua_parser import parse

    found = parse(text)
    browser = found.user_agent.family if found.user_agent else None
    system = found.os.family if found.os else None
    browser = _SIMPLER.get(browser, browser) if browser and browser != "Other" else None
    system = _SIMPLER.get(system, system) if system and system != "Other" else None
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    if browser or system:
        return browser or system or ""
    return text.split("/", 1)[0].split()[0][:40]

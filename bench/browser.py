"""A person's view: navigation to the first live reading, in Chromium (Debian's).

One browser, one context with the session cookie already set; each navigation opens a new
page (the context keeps its connection pool, as a tab reload would). The page's own clock
gives the time: ``performance.now()`` when ``#status`` first turns ``data-state="live"``,
which counts from the navigation's start.
"""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
_WATCH_LIVE = """
window.__cemmLiveAt = null;
window.__cemmWs = {};
(() => {
  // Note when the page's first WebSocket is created, opens and gets its first message.
  const Native = window.WebSocket;
  const Wrapped = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    const marks = window.__cemmWs;
    if (marks.created === undefined) {
      marks.created = performance.now();
      ws.addEventListener("open", () => { marks.open ??= performance.now(); });
      ws.addEventListener("message", () => { marks.message ??= performance.now(); });
    }
    return ws;
  };
  Wrapped.prototype = Native.prototype;
  for (const name of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Wrapped[name] = Native[name];
  window.WebSocket = Wrapped;
})();
new MutationObserver(() => {
  const status = document.getElementById("status");
  if (window.__cemmLiveAt === null && status && status.dataset.state === "live") {
    window.__cemmLiveAt = performance.now();
  }
}).observe(document, {subtree: true, attributes: true, childList: true});
"""


_MARKS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const ws = window.__cemmWs;
  const assets = performance.getEntriesByType("resource")
    .filter((e) => e.initiatorType === "script" || e.initiatorType === "link");
  return {
    live: window.__cemmLiveAt,
    html_first_byte: nav ? nav.responseStart : null,
    html_done: nav ? nav.responseEnd : null,
    assets_done: assets.length ? Math.max(...assets.map((e) => e.responseEnd)) : null,
    // Connections the page's script and style sheet had to open (0: pooled ones reused).
    asset_connections: assets.filter((e) => e.connectEnd > e.connectStart).length,
    dom_ready: nav ? nav.domContentLoadedEventEnd : null,
    ws_created: ws.created ?? null,
    ws_open: ws.open ?? null,
    ws_first_message: ws.message ?? null,
  };
}"""


def first_live_reading(
    targets: dict[str, tuple[str, tuple[str, str] | None]], navigations: int
) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]]]:
    """Milliseconds from navigation to the first live reading, per target, interleaved.

    ``targets``: name -> (page URL, session cookie (name, value) or None).
    """
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {name: [] for name in targets}
    # Where the time went: milestones of each navigation, ms from its start.
    marks: dict[str, dict[str, list[float]]] = {name: {} for name in targets}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context()
            cookies: list[Any] = [
                {"name": c[0], "value": c[1], "domain": "127.0.0.1", "path": "/"}
                for _, c in targets.values()
                if c is not None
            ]
            if cookies:
                context.add_cookies(cookies)
            context.add_init_script(_WATCH_LIVE)
            # One unmeasured navigation each: the first start-up of Chromium's network
            # stack is nobody's cost.
            for round_ in range(navigations + 1):
                for name, (url, _) in targets.items():
                    page = context.new_page()
                    try:
                        page.goto(url, wait_until="commit", timeout=15000)
                        page.wait_for_function("window.__cemmLiveAt !== null", timeout=15000)
                        measured = page.evaluate(_MARKS)
                    finally:
                        page.close()
                    if round_ > 0:
                        results[name].append(float(measured["live"]))
                        for key, value in measured.items():
                            if value is not None:
                                marks[name].setdefault(key, []).append(float(value))
        finally:
            browser.close()
    return results, marks

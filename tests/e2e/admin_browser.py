"""What the admin pages' browser tests share: a page whose script errors are collected,
logging in through the login page, and the check that a page fits its window."""

from __future__ import annotations

from typing import Any

from tests.support.gateway import ROOT

SCREENSHOTS = ROOT / "results" / "screenshots"
TIMEOUT_MS = 10_000

# Every box whose content is wider than the box itself, where nothing clips it (a table
# cell pushed wide by a name, a button by its label, the page by anything): the page's own
# scroll width first. Form controls are left out (a <select> measures its longest option).
_OVERFLOWS = """() => {
  const found = [];
  for (const box of document.querySelectorAll('body *')) {
    const style = getComputedStyle(box);
    if (['none', 'inline', 'contents'].includes(style.display)) continue;
    if (style.overflowX !== 'visible' || box.matches('select, input, textarea')) continue;
    if (box.closest('dialog:not([open])')) continue;
    if (box.clientWidth > 0 && box.scrollWidth > box.clientWidth + 1) {
      const text = (box.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
      found.push(`<${box.tagName.toLowerCase()} class="${box.className}">`
        + ` ${box.scrollWidth} px wide in ${box.clientWidth} px: ${text}`);
    }
  }
  return [document.documentElement.scrollWidth, found];
}"""


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))


def log_in(page: Any, name: str, password: str) -> None:
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("form[action='/.gateway/login'] button[type=submit]")


def overflows(page: Any) -> list[str]:
    """What sticks out at the page's current width: nothing on a tidy page."""
    width = page.viewport_size["width"]
    scroll_width, boxes = page.evaluate(_OVERFLOWS)
    found = (
        [f"the page is {scroll_width} px wide in a {width} px window"]
        if scroll_width > width
        else []
    )
    return found + boxes

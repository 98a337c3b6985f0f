// cemm-gateway admin dashboard: keeps the page current without reloading.
// Loaded with <script src>, never inline (the CSP allows only this site's own files).
//
// Every few seconds, while the tab is visible, it asks the page's data-live URL for the
// dashboard's content (a small HTML fragment, rendered by the server like the page itself)
// and puts it in place of <main>'s content - short polling, because the admin app sits
// behind mitmproxy, which buffers answers (no streaming). While someone has focus on a
// control inside <main>, the update waits (it would take the focus away). When the gateway
// does not answer, or the login ended, the "As of" line says the page is not current.
(function () {
  "use strict";
  const INTERVAL_MS = 5000;
  const main = document.querySelector("main[data-live]");
  if (!main || !window.fetch) return;
  const url = main.dataset.live;
  let timer = null;

  function failed() {
    const status = main.querySelector("[data-live-status]");
    if (status && status.dataset.failed) {
      status.textContent = status.dataset.failed;
      status.dataset.stale = "";
    }
  }

  function busy() {
    const focused = document.activeElement;
    return focused && focused !== document.body && main.contains(focused);
  }

  async function refresh() {
    timer = null;
    if (document.hidden) return;
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
        redirect: "manual",
        cache: "no-store",
      });
      if (response.status !== 200) throw new Error(String(response.status));
      const fragment = await response.text();
      if (!busy()) main.innerHTML = fragment;
    } catch (error) {
      failed();
    }
    schedule();
  }

  function schedule() {
    if (timer === null && !document.hidden) timer = window.setTimeout(refresh, INTERVAL_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
    } else {
      refresh();
    }
  });
  schedule();
})();

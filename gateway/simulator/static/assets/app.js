// CEMM simulator page: live power over a WebSocket, client-side routes, system info.
// Loaded with <script src>, never inline, so the page works under a strict CSP.
(function () {
  "use strict";

  const MODES = ["hostname-port", "protocol-aware", "same-origin"];
  const RECONNECT_MS = 1500;

  function meta(name, fallback) {
    const element = document.querySelector(`meta[name="${name}"]`);
    return element && element.content ? element.content : fallback;
  }

  // The server's choice, unless the address bar asks for another (?ws=<mode>).
  const requested = new URLSearchParams(location.search).get("ws");
  const mode = MODES.includes(requested) ? requested : meta("cemm-ws-mode", "hostname-port");
  const port = meta("cemm-ws-port", "8090");
  const path = meta("cemm-ws-path", "/ws");
  const interval = Number(meta("cemm-interval", "1")) || 1;
  // A socket that stays silent this long is treated as dead (a proxy may drop it quietly).
  const silenceMs = Math.max(5000, 3000 * interval);

  function liveUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    switch (mode) {
      case "protocol-aware":
        return `${scheme}://${location.hostname}:${port}${path}`;
      case "same-origin":
        return `${scheme}://${location.host}${path}`;
      default:
        // The real CEMM's way: always plain ws:, same host name, the other port.
        return `ws://${location.hostname}:${port}${path}`;
    }
  }

  const $ = (id) => document.getElementById(id);

  function setState(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text;
    $("banner").hidden = state !== "disconnected";
  }

  function showReading(reading) {
    const power = $("power");
    power.textContent = Math.round(reading.power_w).toLocaleString("nl-NL");
    power.dataset.seq = String(reading.seq);
    power.dataset.watts = String(reading.power_w);
    const rows = Object.entries(reading.channels || {}).map(([key, value]) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      const amount = document.createElement("td");
      name.textContent = key;
      amount.textContent = String(value);
      row.append(name, amount);
      return row;
    });
    $("channels").replaceChildren(...rows);
    const time = new Date(reading.time * 1000).toLocaleTimeString("nl-NL");
    setState("live", `Live \u00b7 ${time}`);
  }

  let socket = null;
  let retryTimer = null;
  let silenceTimer = null;

  function watchSilence() {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => socket && socket.close(), silenceMs);
  }

  function scheduleReconnect() {
    if (retryTimer === null) {
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, RECONNECT_MS);
    }
  }

  function connect() {
    const url = liveUrl();
    const shown = $("ws-url");
    shown.textContent = url;
    shown.dataset.mode = mode;
    let current;
    try {
      current = new WebSocket(url);
    } catch (error) {
      // E.g. a ws: URL refused on an https: page before any network traffic.
      setState("disconnected", "Geen verbinding");
      scheduleReconnect();
      return;
    }
    socket = current;
    watchSilence();
    current.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message.type === "reading") {
        watchSilence();
        showReading(message);
      }
    });
    current.addEventListener("close", () => {
      if (socket !== current) return;
      socket = null;
      clearTimeout(silenceTimer);
      setState("disconnected", "Geen verbinding");
      scheduleReconnect();
    });
  }

  // Client-side routes.
  const VIEWS = { "/": "dashboard", "/dashboard": "dashboard", "/instellingen/systeem": "systeem" };

  function render() {
    const key = location.pathname.replace(/\/+$/, "") || "/";
    const view = VIEWS[key] || "notfound";
    for (const section of document.querySelectorAll("section[data-view]")) {
      section.hidden = section.dataset.view !== view;
    }
    for (const link of document.querySelectorAll("a[data-view-link]")) {
      if (link.dataset.viewLink === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.body.dataset.view = view;
    if (view === "systeem") loadSystem();
  }

  async function loadSystem() {
    try {
      const response = await fetch("/api/v1/public/cemm", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const info = await response.json();
      $("system-name").textContent = info.name;
      $("system-mac").textContent = info.mac;
      $("system-ip").textContent = info.local_ip;
      $("system-version").textContent = info.version;
      $("system-timezone").textContent = info.timezone;
      $("system-time").textContent = new Date(info.time * 1000).toLocaleString("nl-NL");
      // The real CEMM warns about drift against NTP; the browser's clock stands in here.
      const drift = Math.round(info.time - Date.now() / 1000);
      const warning = $("drift");
      warning.hidden = Math.abs(drift) < 60;
      warning.textContent = `Let op: de klok van de CEMM wijkt ${drift} s af. Controleer de NTP-server.`;
    } catch (error) {
      $("system-name").textContent = `Niet beschikbaar (${error.message})`;
    }
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-route]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    if (link.pathname !== location.pathname) {
      history.pushState(null, "", link.pathname + location.search);
    }
    render();
  });
  window.addEventListener("popstate", render);

  render();
  connect();
})();

/* cemm-gateway: lets the CEMM's page find its live-data WebSocket through the gateway.
 *
 * The CEMM's page opens ws://<its host>:8090/. Behind the gateway under HTTPS that is
 * blocked as mixed content, and with only one forwarded port it does not reach anything.
 * This script, added by the gateway to the CEMM's HTML, sends such sockets to the same
 * origin instead (/.gateway/ws/... on the web port, which the gateway relays to the CEMM's
 * WebSocket port with the same login and Origin checks), and upgrades ws: to wss: under
 * HTTPS. Nothing else about the page changes.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var ports = (script && script.dataset.wsPorts ? script.dataset.wsPorts : "").split(",");
  var prefix = script && script.dataset.prefix ? script.dataset.prefix : "/.gateway/ws";
  var Native = window.WebSocket;
  if (!Native) {
    return;
  }

  function rewrite(url) {
    var target;
    try {
      target = new URL(String(url), window.location.href);
    } catch (error) {
      return url;
    }
    var secure = window.location.protocol === "https:";
    if (target.protocol === "http:" || target.protocol === "https:") {
      target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
    }
    if (target.protocol !== "ws:" && target.protocol !== "wss:") {
      return url;
    }
    if (target.hostname === window.location.hostname && ports.indexOf(target.port) !== -1) {
      return (secure ? "wss:" : "ws:") + "//" + window.location.host + prefix +
        target.pathname + target.search;
    }
    if (secure && target.protocol === "ws:") {
      target.protocol = "wss:";
    }
    return target.toString();
  }

  function GatewayWebSocket(url, protocols) {
    return protocols === undefined ? new Native(rewrite(url)) : new Native(rewrite(url), protocols);
  }
  GatewayWebSocket.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (name) {
    Object.defineProperty(GatewayWebSocket, name, { value: Native[name] });
  });
  window.WebSocket = GatewayWebSocket;
})();

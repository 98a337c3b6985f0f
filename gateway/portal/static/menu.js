/* cemm-gateway: the gateway's menu on the CEMM's pages.
 *
 * Added by the gateway to every CEMM page it serves as HTML (with an integrity hash, so
 * the CEMM's Content-Security-Policy admits it). It puts one small round button in the
 * bottom right corner - away from the CEMM's navigation, which sits at the top - inside
 * its own shadow root so the CEMM's styles and the menu's do not mix. Opening it asks
 * /.gateway/menu (same origin) who is signed in and where the links go, in the reader's
 * language, and shows them; "Log out" is a same-origin form to /.gateway/logout.
 *
 * Styles are set through the CSSOM (element.style), which a CSP without
 * 'unsafe-inline' still allows; the script adds no <style> element or style attribute.
 */
(function () {
  "use strict";
  var ENDPOINT = "/.gateway/menu";
  var ACCENT = "#1f2328";

  function css(element, rules) {
    Object.keys(rules).forEach(function (name) {
      element.style.setProperty(name, rules[name]);
    });
    return element;
  }

  function make(tag, rules, text) {
    var element = css(document.createElement(tag), rules || {});
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  var ITEM = {
    display: "block", "box-sizing": "border-box", width: "100%", "min-height": "44px",
    padding: "10px 14px", margin: "0", border: "0", background: "transparent",
    color: ACCENT, font: "inherit", "text-align": "left", "text-decoration": "none",
    cursor: "pointer"
  };

  function build() {
    var host = make("div", {
      position: "fixed", right: "12px", bottom: "12px", "z-index": "2147483647",
      margin: "0", padding: "0"
    });
    host.setAttribute("data-cemm-gateway-menu", "");
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var box = make("div", {
      font: "15px/1.4 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
      color: ACCENT
    });
    var button = make("button", {
      width: "44px", height: "44px", "border-radius": "50%", border: "1px solid #8c959f",
      background: "#ffffff", color: ACCENT, "box-shadow": "0 1px 4px rgba(0,0,0,.3)",
      cursor: "pointer", padding: "0", font: "700 20px/1 system-ui, sans-serif"
    }, "\u2630");
    button.type = "button";
    button.setAttribute("aria-label", "Gateway");
    button.setAttribute("aria-expanded", "false");
    // A disclosure (button + panel of links), not an ARIA menu: plain Tab order works.
    button.setAttribute("aria-controls", "cemm-gateway-menu-panel");
    button.setAttribute("data-part", "button");
    var panel = make("div", {
      position: "absolute", right: "0", bottom: "52px", "min-width": "220px",
      "max-width": "calc(100vw - 24px)", background: "#ffffff",
      border: "1px solid #8c959f", "border-radius": "8px",
      "box-shadow": "0 4px 16px rgba(0,0,0,.25)", padding: "6px 0", display: "none"
    });
    panel.id = "cemm-gateway-menu-panel";
    panel.setAttribute("data-part", "panel");
    box.appendChild(panel);
    box.appendChild(button);
    root.appendChild(box);

    function close() {
      panel.style.setProperty("display", "none");
      button.setAttribute("aria-expanded", "false");
    }

    function fill(answer) {
      panel.textContent = "";
      panel.appendChild(make("p", {
        margin: "0", padding: "8px 14px", color: "#424a53", "font-size": "14px",
        "border-bottom": "1px solid #d8dee4"
      }, answer.who || ""));
      (answer.links || []).forEach(function (link) {
        var a = make("a", ITEM, link.label);
        a.href = link.href;
        panel.appendChild(a);
      });
      if (answer.logout) {
        var form = make("form", { margin: "0" });
        form.method = "post";
        form.action = answer.logout.action;
        var submit = make("button", ITEM, answer.logout.label);
        submit.type = "submit";
        form.appendChild(submit);
        panel.appendChild(form);
      }
      if (answer.title) {
        button.setAttribute("aria-label", answer.title);
      }
    }

    function open() {
      button.setAttribute("aria-expanded", "true");
      panel.style.setProperty("display", "block");
      fetch(ENDPOINT, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(String(response.status));
          }
          return response.json();
        })
        .then(fill)
        .then(function () {
          var first = panel.querySelector("a, button");
          if (first) {
            first.focus();
          }
        })
        .catch(function () {
          // The gateway's own pages still work without the menu's details.
          window.location.href = "/.gateway/account";
        });
    }

    button.addEventListener("click", function () {
      if (panel.style.getPropertyValue("display") === "none") {
        open();
      } else {
        close();
      }
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        close();
        button.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (event.target !== host) {
        close();
      }
    });
    (document.body || document.documentElement).appendChild(host);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", build);
  } else {
    build();
  }
})();

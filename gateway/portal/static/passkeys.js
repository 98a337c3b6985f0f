// Passkeys on the gateway's own pages: log in with one (the browser's autofill and a
// button), use one as the second step after a password, and make one on the account page.
// The server sends the WebAuthn options as JSON (binary fields in base64url) and checks
// every answer; this file only converts between JSON and the browser's ArrayBuffers.
// Each part starts from an element with a data-passkey attribute; nothing else runs.
"use strict";
(function () {
  function toBytes(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  }
  function toText(buffer) {
    let binary = "";
    new Uint8Array(buffer).forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(json) {
    const o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    o.excludeCredentials = (json.excludeCredentials || []).map(
      (c) => Object.assign({}, c, { id: toBytes(c.id) }));
    return o;
  }
  function requestOptions(json) {
    const o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map(
      (c) => Object.assign({}, c, { id: toBytes(c.id) }));
    return o;
  }
  function credentialJSON(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      response: response, clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }
  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    let data = {};
    try { data = await answer.json(); } catch (e) { data = {}; }
    return { status: answer.status, data: data };
  }
  function say(box, text) {
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  }
  function supported() {
    return window.PublicKeyCredential !== undefined && window.isSecureContext;
  }

  // Log in: passkey alone (autofill on the user-name field, and the button), or the
  // second step after a password (data-challenge names the waiting step).
  function login(part) {
    const box = part.querySelector("[data-passkey-message]");
    const button = part.querySelector("button");
    const base = { csrf_token: part.dataset.csrf, next: part.dataset.next,
                   challenge: part.dataset.challenge || "" };
    let autofill = null;
    let autofillAsked = null;
    async function run(mediation) {
      const start = await post(part.dataset.options, base);
      if (start.status !== 200) { say(box, start.data.detail || part.dataset.failed); return; }
      const request = { publicKey: requestOptions(start.data.options) };
      if (mediation) {
        autofill = new AbortController();
        request.mediation = "conditional";
        request.signal = autofill.signal;
      }
      let credential;
      try {
        const asked = navigator.credentials.get(request);
        if (mediation) autofillAsked = asked;
        credential = await asked;
      } catch (error) {
        if (mediation) return;
        const blocked = error && error.name === "SecurityError";
        say(box, blocked ? part.dataset.unsupported : part.dataset.cancelled);
        return;
      }
      if (!credential) return;
      const done = await post(part.dataset.finish,
        Object.assign({}, base, { ticket: start.data.ticket, credential: credentialJSON(credential) }));
      if (done.status === 200 && done.data.next) { window.location.assign(done.data.next); return; }
      say(box, done.data.detail || part.dataset.failed);
    }
    if (!supported()) { part.hidden = true; return; }
    part.hidden = false;
    button.addEventListener("click", async () => {
      // The browser takes one request at a time: end the autofill request first.
      if (autofill) {
        autofill.abort();
        autofill = null;
        try { await autofillAsked; } catch (error) { /* aborted */ }
      }
      say(box, "");
      await run(false);
    });
    if (part.dataset.autofill && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((yes) => { if (yes) run(true); });
    }
  }

  // The account page: make a passkey. Without a fresh proof the server says so, and the
  // form is sent as it is (to the page that asks for the password, then back here).
  function register(form) {
    const box = form.querySelector("[data-passkey-message]");
    if (!supported()) { say(box, form.dataset.unsupported); return; }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      say(box, "");
      const base = { csrf_token: form.dataset.csrf };
      const start = await post(form.dataset.options, base);
      if (start.status === 401) { form.submit(); return; }
      if (start.status !== 200) { say(box, start.data.detail || form.dataset.failed); return; }
      let credential;
      try {
        credential = await navigator.credentials.create({ publicKey: creationOptions(start.data.options) });
      } catch (error) {
        // A certificate the browser does not trust blocks WebAuthn (a SecurityError).
        say(box, error && error.name === "SecurityError" ? form.dataset.unsupported : form.dataset.cancelled);
        return;
      }
      const name = form.querySelector("input[name=name]").value;
      const done = await post(form.dataset.finish, Object.assign({}, base,
        { name: name, credential: credentialJSON(credential) }));
      if (done.status === 200) { window.location.assign(done.data.next); return; }
      say(box, done.data.detail || form.dataset.failed);
    });
  }

  document.querySelectorAll("[data-passkey=login]").forEach(login);
  document.querySelectorAll("[data-passkey=register]").forEach(register);
})();

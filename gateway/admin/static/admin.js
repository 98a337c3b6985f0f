// cemm-gateway admin pages: ask before a destructive form is sent.
// Loaded with <script src>, never inline (the CSP allows only this site's own files).
//
// A form with data-confirm="question" has a hidden field "confirmed". On submit this script
// opens a <dialog> with the question; "Confirm" sets confirmed=1 and sends the form, anything
// else sends nothing. data-confirm-when="name=value" asks only when that field has that value.
// Without this script the server answers the form with a confirmation page instead.
(function () {
  "use strict";

  let dialog = null;
  let pending = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-text");
    const text = document.createElement("p");
    text.id = "confirm-dialog-text";
    const row = document.createElement("div");
    row.className = "button-row";
    const ok = document.createElement("button");
    ok.type = "button";
    ok.className = "button button-danger";
    ok.dataset.confirmOk = "";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button button-secondary";
    cancel.textContent = "Cancel";
    row.append(ok, cancel);
    dialog.append(text, row);
    document.body.append(dialog);

    ok.addEventListener("click", () => {
      const form = pending;
      pending = null;
      dialog.close();
      if (!form) return;
      const field = form.querySelector('input[name="confirmed"]');
      if (field) field.value = "1";
      form.submit();
    });
    cancel.addEventListener("click", () => {
      pending = null;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      pending = null;
    });
  }

  function wanted(form) {
    const condition = form.dataset.confirmWhen;
    if (!condition) return true;
    const [name, value] = condition.split("=");
    const field = form.elements.namedItem(name);
    return Boolean(field) && field.value === value;
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    const field = form.querySelector('input[name="confirmed"]');
    if (field && field.value === "1") return;
    if (!wanted(form)) return;
    if (typeof HTMLDialogElement === "undefined") {
      // Very old browser: let the server ask on a page of its own.
      return;
    }
    event.preventDefault();
    if (!dialog) build();
    pending = form;
    dialog.querySelector("#confirm-dialog-text").textContent = form.dataset.confirm;
    dialog.querySelector("[data-confirm-ok]").textContent =
      form.dataset.confirmButton || "Confirm";
    // The page's language: the form carries the translated "Cancel".
    dialog.querySelector(".button-secondary").textContent =
      form.dataset.confirmCancel || "Cancel";
    dialog.showModal();
  });
})();

// Progressive enhancement only (R1): every page works with JavaScript disabled.
// Loaded with `defer` from base.html; no inline scripts are allowed by the CSP.
// 1. Upload progress on forms marked `js-upload` (the report and evidence forms): the form is
//    sent with XMLHttpRequest so the upload can be shown; if anything goes wrong before the
//    server answers, the form falls back to a normal submit.
// 2. A copy-to-clipboard button for the receipt code (hidden when JavaScript is off).
"use strict";

(function () {
  function showProgress(form, percent, text) {
    var box = form.querySelector(".upload-progress");
    if (!box) { return; }
    box.hidden = false;
    var bar = box.querySelector("progress");
    var label = box.querySelector(".upload-progress-text");
    if (bar) {
      if (percent === null) { bar.removeAttribute("value"); } else { bar.value = percent; }
    }
    if (label) { label.textContent = text; }
  }

  // Replace the page with the server's answer (the receipt, or the form with errors), then
  // enhance the new page too. Scripts in it are not run: this file is the only script.
  function showDocument(doc) {
    var root = document.importNode(doc.documentElement, true);
    document.replaceChild(root, document.documentElement);
    window.scrollTo(0, 0);
    enhance(document);
    var target = document.querySelector(".error-summary") || document.getElementById("main");
    if (target) { target.focus(); }
  }

  function sendWithProgress(form, event) {
    if (!window.XMLHttpRequest || !window.FormData || form.dataset.sending === "fallback") {
      return;  // let the browser submit normally
    }
    event.preventDefault();
    if (form.dataset.sending === "yes") { return; }
    form.dataset.sending = "yes";
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }

    var xhr = new XMLHttpRequest();
    var answered = false;
    xhr.open("POST", form.action);
    xhr.responseType = "document";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable && e.total > 0) {
        var pct = Math.floor((e.loaded / e.total) * 100);
        showProgress(form, pct, pct + " %");
      } else {
        showProgress(form, null, "");
      }
    });
    xhr.upload.addEventListener("load", function () { showProgress(form, 100, "100 %"); });
    xhr.addEventListener("load", function () {
      answered = true;
      var doc = xhr.response;
      var action = new URL(form.action, window.location.href);
      var landed = xhr.responseURL ? new URL(xhr.responseURL) : action;
      if (landed.pathname !== action.pathname) {
        // the server redirected (e.g. back to the follow-up page): go there for real
        window.location.assign(landed.href);
      } else if (doc && doc.documentElement) {
        showDocument(doc);
      } else {
        fallback();
      }
    });
    function fallback() {
      if (answered && xhr.status) { return; }
      form.dataset.sending = "fallback";
      for (var j = 0; j < buttons.length; j++) { buttons[j].disabled = false; }
      // Re-sending is safe: the form's submission token makes the server keep only one copy.
      HTMLFormElement.prototype.submit.call(form);
    }
    xhr.addEventListener("error", fallback);
    xhr.addEventListener("timeout", fallback);
    showProgress(form, 0, "0 %");
    xhr.send(new FormData(form));
  }

  function copyCode(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var status = button.parentNode.querySelector(".copy-status");
    if (!target) { return; }
    var text = target.textContent.replace(/\s+/g, " ").trim();
    function done(ok) {
      if (status) {
        status.textContent = button.getAttribute(ok ? "data-copied-text" : "data-failed-text");
      }
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else {
      done(false);
    }
  }

  function enhance(root) {
    var forms = root.querySelectorAll("form.js-upload");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (e) { sendWithProgress(e.currentTarget, e); });
    }
    var copies = root.querySelectorAll(".copy-button");
    for (var k = 0; k < copies.length; k++) {
      if (navigator.clipboard && navigator.clipboard.writeText) {
        copies[k].hidden = false;
        copies[k].addEventListener("click", function (e) { copyCode(e.currentTarget); });
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  } else {
    enhance(document);
  }
})();

/* Orbis dashboard: the little the pages need beyond HTML (no framework, no CDN).
   - live infrastructure page: the server's event stream updates the state, nodes and outputs
   - catalogue search as you type; enabled_by fields; copy buttons; list/map row editors. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function filterCards(input) {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll(input.getAttribute("data-filter")).forEach(function (card) {
      var text = card.getAttribute("data-text") || "";
      card.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  }

  function enabledBy() {
    document.querySelectorAll("[data-enabled-by]").forEach(function (field) {
      var sw = document.getElementById(field.getAttribute("data-enabled-by"));
      if (!sw) return;
      var update = function () {
        var on = sw.type === "checkbox" ? sw.checked : ["", "0", "false"].indexOf(sw.value) < 0;
        field.querySelectorAll("input, select, textarea").forEach(function (c) { c.disabled = !on; });
        field.classList.toggle("disabled", !on);
      };
      sw.addEventListener("change", update);
      update();
    });
  }

  // Row editors: "Add a row" copies the <template> row with a fresh index; "Remove" drops one.
  // The server reads whatever rows arrive, in index order, and checks each.
  function rowEditors() {
    document.addEventListener("click", function (ev) {
      var remove = ev.target.closest("[data-remove-row]");
      if (remove) { remove.closest(".entry-row").remove(); return; }
      var add = ev.target.closest("[data-add-row]");
      if (!add) return;
      var box = add.closest("[data-rows]");
      var index = parseInt(box.getAttribute("data-next"), 10) || 0;
      box.setAttribute("data-next", String(index + 1));
      var row = box.querySelector("template").content.firstElementChild.cloneNode(true);
      row.querySelectorAll("[name], [aria-label]").forEach(function (el) {
        ["name", "aria-label"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace("__i__", index).replace("__n__", index + 1));
        });
      });
      box.querySelector(".row-list").appendChild(row);
      var first = row.querySelector("input, select");
      if (first) first.focus();
    });
  }

  // The image picker follows the chosen credentials: their sites' images, rendered by the server.
  function imagePicker() {
    var picker = document.getElementById("image");
    var cred = document.getElementById("credential");
    if (!picker || !cred) return;
    cred.addEventListener("change", function () {
      var url = picker.getAttribute("data-images") + "?credential=" + encodeURIComponent(cred.value) +
        "&image=" + encodeURIComponent(picker.value);
      picker.disabled = true;
      fetch(url, {credentials: "same-origin"}).then(function (r) {
        return r.ok && !r.redirected ? r.text() : null;
      }).then(function (html) {
        if (html !== null) picker.innerHTML = html;
      }).finally(function () { picker.disabled = false; });
    });
  }

  function copyButtons() {
    document.addEventListener("click", function (ev) {
      var button = ev.target.closest("[data-copy]");
      if (!button) return;
      var text = button.getAttribute("data-copy");
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, done);
      } else {
        var area = document.createElement("textarea");
        area.value = text; document.body.appendChild(area); area.select();
        try { document.execCommand("copy"); } catch (e) { /* the text stays selectable */ }
        document.body.removeChild(area); done();
      }
    });
  }

  function refresh(el) {
    return fetch(el.getAttribute("data-src"), {credentials: "same-origin"}).then(function (r) {
      if (r.redirected || !r.ok) return;
      return r.text().then(function (html) { el.innerHTML = html; });
    });
  }

  function live(box) {
    if (!window.EventSource) return;
    var status = document.getElementById("live");
    var state = document.getElementById("infra-state");
    var nodes = document.getElementById("nodes");
    var outputs = document.getElementById("outputs");
    var pending = null, lastState = state ? state.textContent : "";
    var schedule = function (withOutputs) {
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        refresh(nodes);
        if (withOutputs) refresh(outputs);
      }, 300);
    };
    var source = new EventSource(box.getAttribute("data-stream"));
    source.addEventListener("open", function () { if (status) status.textContent = "live"; });
    source.addEventListener("detail", function (ev) {
      var detail = JSON.parse(ev.data);
      if (state) {
        state.textContent = detail.state;
        state.className = "state state-" + detail.state;
      }
      schedule(detail.state !== lastState || detail.state === "configured");
      lastState = detail.state;
    });
    source.addEventListener("end", function (ev) {
      var data = JSON.parse(ev.data);
      if (data.state === "deleted" && state) { state.textContent = "deleted"; state.className = "state state-deleted"; }
      if (status) status.textContent = "ended";
      source.close();
    });
    source.addEventListener("error", function () {
      if (!status) return;
      // closed for good: refused (too many live pages open: ORBIS_MAX_STREAMS_PER_USER) or gone
      status.textContent = source.readyState === EventSource.CLOSED ? "not live (reload the page)" : "reconnecting…";
    });
  }

  onReady(function () {
    var search = document.querySelector("[data-filter]");
    if (search) { search.addEventListener("input", function () { filterCards(search); }); }
    enabledBy();
    copyButtons();
    rowEditors();
    imagePicker();
    var box = document.getElementById("infra");
    if (box) live(box);
  });
})();

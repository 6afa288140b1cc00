// tiaojie: the only script. Pages work without it; it keeps the dashboard live over
// server-sent events, keeps drafts of forms being filled in, and offers a print button on
// the case file and the documents.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (live && window.EventSource) {
    // The browser reconnects by itself after a drop (sending the last update's id); when it
    // gives up (the server answered with an error while restarting), connect again with
    // a growing pause, from the last update received.
    var base = live.getAttribute("data-source");
    var last = null;
    var pause = 2000;
    var connect = function () {
      var url = last === null ? base : base.replace(/([?&]from=)[^&]*/, "$1" + encodeURIComponent(last));
      var source = new EventSource(url);
      source.addEventListener("open", function () {
        pause = 2000;
        if (state) { state.textContent = state.getAttribute("data-on"); state.className = "live-state on"; }
      });
      source.addEventListener("update", function (e) {
        live.innerHTML = e.data;
        if (e.lastEventId) { last = e.lastEventId; }
        live.setAttribute("data-updates", String(Number(live.getAttribute("data-updates") || "0") + 1));
      });
      source.addEventListener("error", function () {
        if (state) { state.textContent = state.getAttribute("data-off"); state.className = "live-state"; }
        if (source.readyState === 2) {
          setTimeout(connect, pause);
          pause = Math.min(pause * 2, 30000);
        }
      });
    };
    connect();
  }
  // Drafts: what is typed into a form is kept in this browser until the form is sent and
  // accepted, so that a lost connection or a reload on site loses nothing. A field the page
  // has not changed since it was served takes the draft's value back.
  var store = null;
  try { store = window.localStorage; } catch (e) { store = null; }
  if (store) {
    var done = new URLSearchParams(location.search).get("done");
    if (done) {
      var sent = done === "opened" ? "/cases/new" : location.pathname + "/do/" + done;
      store.removeItem("tiaojie-draft:" + sent);
      store.removeItem("tiaojie-draft:" + location.pathname);
    }
    var skip = { _csrf: 1, version: 1, password: 1, current: 1, token: 1, totp: 1 };
    var kept = function (el) {
      return el.name && !skip[el.name] && el.type !== "hidden" && el.type !== "checkbox" &&
        el.type !== "password" && el.type !== "file";
    };
    // The value the page was served with (a business time prefilled with "now" is one).
    var served = function (el) {
      if (el.tagName === "SELECT") {
        return (el.querySelector("option[selected]") || el.options[0] || {}).value;
      }
      return el.defaultValue;
    };
    var forms = document.querySelectorAll("form[data-draft]");
    for (var i = 0; i < forms.length; i++) {
      (function (form) {
        var key = "tiaojie-draft:" + form.getAttribute("action");
        var draft = {};
        try { draft = JSON.parse(store.getItem(key) || "{}") || {}; } catch (e) { draft = {}; }
        var restored = false;
        for (var j = 0; j < form.elements.length; j++) {
          var el = form.elements[j];
          if (!kept(el) || !(el.name in draft) || !draft[el.name]) { continue; }
          if (el.value === served(el) && el.value !== draft[el.name]) {
            el.value = draft[el.name];
            restored = true;
          }
        }
        if (restored) {
          form.setAttribute("data-restored", "1");
          var details = form.closest("details");
          if (details) { details.open = true; }
          var note = document.createElement("p");
          note.className = "muted small draft-note";
          note.textContent = form.getAttribute("data-draft");
          form.insertBefore(note, form.firstChild);
        }
        var save = function () {
          var data = {};
          for (var k = 0; k < form.elements.length; k++) {
            var e = form.elements[k];
            // Only what the mediator changed: a field left as served is served again.
            if (kept(e) && e.value && e.value !== served(e)) { data[e.name] = e.value; }
          }
          try { store.setItem(key, JSON.stringify(data)); } catch (e) { /* full or denied */ }
        };
        form.addEventListener("input", save);
        form.addEventListener("change", save);
      })(forms[i]);
    }
  }
  var print = document.getElementById("print-button");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();

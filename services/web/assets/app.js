// tiaojie: the only script. Pages work without it; it keeps the dashboard live over
// server-sent events and offers a print button on the case file.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (live && window.EventSource) {
    var source = new EventSource(live.getAttribute("data-source"));
    source.addEventListener("open", function () {
      if (state) { state.textContent = state.getAttribute("data-on"); state.className = "live-state on"; }
    });
    source.addEventListener("update", function (e) {
      live.innerHTML = e.data;
      live.setAttribute("data-updates", String(Number(live.getAttribute("data-updates") || "0") + 1));
    });
    source.addEventListener("error", function () {
      if (state) { state.textContent = state.getAttribute("data-off"); state.className = "live-state"; }
    });
  }
  var print = document.getElementById("print-button");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();

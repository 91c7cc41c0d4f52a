// The dashboard's one script: refreshes the live part of a page by polling its fragment URL.
// Pages work without it (reload by hand); nothing else runs here.
(function () {
  "use strict";
  function poll(box) {
    var url = box.getAttribute("data-refresh");
    var every = parseInt(box.getAttribute("data-every"), 10) || 3000;
    function tick() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.redirected || !response.ok) { return null; }
          return response.text();
        })
        .then(function (html) {
          if (html !== null) { box.innerHTML = html; }
        })
        .catch(function () { /* offline for a moment: keep the last figures, try again */ })
        .then(function () { window.setTimeout(tick, every); });
    }
    window.setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < boxes.length; i++) { poll(boxes[i]); }
  });
})();

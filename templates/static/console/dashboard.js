// Refresh the dashboard's live numbers every 5 seconds from /console/live.json.
// The page is complete without this script; it only keeps the numbers current.
"use strict";
(function () {
  function refresh() {
    fetch("/console/live.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var key = el.getAttribute("data-live");
          if (Object.prototype.hasOwnProperty.call(data, key)) { el.textContent = String(data[key]); }
        });
      })
      .catch(function () { /* the next tick tries again */ });
  }
  setInterval(refresh, 5000);
})();

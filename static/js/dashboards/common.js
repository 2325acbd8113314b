/* Shared helpers of the dashboard pages (plotly.js is served from our static files). */
window.LUS = (function () {
  "use strict";
  return {
    config: { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] },
    json: function (id) {
      var el = document.getElementById(id);
      return el ? JSON.parse(el.textContent) : null;
    },
    fmt: function (v, digits) {
      return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
    },
    dayText: function (day) {
      return day === null || day === undefined ? "day since admission unknown" : "day " + day + " since admission";
    },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 13, color: "#1d2733" },
  };
})();

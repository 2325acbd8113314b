/* Study overview: latest global LUS score of record per patient, coloured by severity now (the exam
   day's guideline class from the clinical record and blood gas), hatched while that exam is not
   signed (its record holds the AI's scores), with the alert threshold. */
(function () {
  "use strict";
  var chart = LUS.json("overview-data");
  var colours = LUS.json("dash-colours");
  var el = document.getElementById("plot-overview");
  if (!el || !chart || !chart.codes.length) return;
  var threshold = Number(el.dataset.threshold);
  var max = Number(el.dataset.max);
  var status = chart.review_status || [];
  function signed(s) { return s === "reviewed" || s === "amended"; }
  var trace = {
    // % of each exam's own protocol maximum: a BLUE-6 exam (0-18) and a 12-zone one (0-36) share the axis.
    type: "bar", name: "Latest global LUS score of record", x: chart.codes, y: chart.luss_pct,
    marker: { color: chart.severity_now.map(function (s) { return s ? colours.now[s] : colours.none; }),
              line: { color: "#1d2733", width: 1 },
              pattern: { shape: chart.codes.map(function (_, i) { return signed(status[i]) ? "" : "/"; }),
                         fgcolor: "#ffffff", solidity: 0.25 } },
    customdata: chart.severity_now_text.map(function (s, i) {
      var risk = chart.risk[i] === null ? "no risk yet" : Math.round(100 * chart.risk[i]) + " % (course class " +
        chart.severity[i] + ")";
      return [s, signed(status[i]) ? status[i] + " (signed)" : "not signed: AI, not reviewed",
              chart.luss[i] + "/" + chart.max_luss[i] + " (" + chart.protocol[i] + ")", chart.coverage[i], risk];
    }),
    hovertemplate: "<b>%{x}</b><br>Global LUS score of record %{customdata[2]} = %{y} % of the maximum" +
      "<br>Coverage: %{customdata[3]}<br>Review: %{customdata[1]}" +
      "<br>Severity now: %{customdata[0]}<br>Risk of a severe course (model): %{customdata[4]}<extra></extra>",
  };
  var layout = {
    font: LUS.font, margin: { t: 10, r: 20, b: 60, l: 70 }, showlegend: false,
    xaxis: { title: { text: "Patient (click a bar for the timeline)" }, type: "category" },
    yaxis: { title: { text: "Global LUS score of record, % of the protocol's maximum" }, range: [0, max] },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: threshold, y1: threshold,
               line: { color: "#b00020", width: 2, dash: "dash" } }],
    annotations: [{ xref: "paper", x: 0, y: threshold, yanchor: "bottom", xanchor: "left", showarrow: false,
                    text: "alert threshold " + threshold + " % of the maximum", bgcolor: "rgba(255,255,255,0.85)",
                    font: { color: "#b00020", size: 12 } }],
  };
  Plotly.newPlot(el, [trace], layout, LUS.config);
  el.on("plotly_click", function (ev) {
    var i = ev.points[0].pointIndex;
    if (chart.urls[i]) window.location.href = chart.urls[i];
  });
})();

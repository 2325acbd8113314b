/* Correlation: score vs blood gas, one colour per patient, least-squares line. */
(function () {
  "use strict";
  var data = LUS.json("correlation-data");
  var el = document.getElementById("plot-correlation");
  if (!el || !data || !data.pairs.length) return;
  var byPatient = {};
  var order = [];
  data.pairs.forEach(function (p) {
    if (!byPatient[p.patient_code]) { byPatient[p.patient_code] = []; order.push(p.patient_code); }
    byPatient[p.patient_code].push(p);
  });
  var traces = order.map(function (code) {
    var rows = byPatient[code];
    return {
      type: "scatter", mode: "markers", name: code, x: rows.map(function (p) { return p.score; }),
      y: rows.map(function (p) { return p.gas; }), marker: { size: 10, opacity: 0.85, line: { color: "#fff", width: 1 } },
      customdata: rows.map(function (p) { return [p.exam_label, p.hours_apart.toFixed(1), p.exam_url]; }),
      hovertemplate: "<b>" + code + "</b> · exam %{customdata[0]}<br>" + data.score_label + ": %{x}<br>" +
        data.gas_label + ": %{y:.2f}<br>gas %{customdata[1]} h from the exam<extra></extra>",
    };
  });
  if (data.slope !== null) {
    var xs = data.pairs.map(function (p) { return p.score; });
    var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
    traces.push({
      type: "scatter", mode: "lines", name: "Least-squares line", x: [lo, hi],
      y: [data.intercept + data.slope * lo, data.intercept + data.slope * hi],
      line: { color: "#1d2733", width: 2, dash: "dash" }, hoverinfo: "skip",
    });
  }
  var title = data.pearson_r !== null
    ? "n = " + data.n + ", r = " + data.pearson_r.toFixed(3) + " (95 % CI " + data.ci_low.toFixed(3) + " to " +
      data.ci_high.toFixed(3) + "), ρ = " + data.spearman_rho.toFixed(3)
    : "n = " + data.n + ": " + data.message;
  Plotly.newPlot(el, traces, {
    font: LUS.font, margin: { t: 40, r: 20, b: 60, l: 80 },
    title: { text: title, font: { size: 14 } },
    legend: { title: { text: "Patient" } },
    // Mixed protocols: % of each exam's maximum, never 0-18 and 0-36 points on one axis.
    xaxis: data.normalised ? { title: { text: data.score_label }, zeroline: false, range: [0, 100], ticksuffix: " %" }
                           : { title: { text: data.score_label }, zeroline: false },
    yaxis: { title: { text: data.gas_label }, zeroline: false },
  }, LUS.config);
  el.on("plotly_click", function (ev) {
    var cd = ev.points[0].customdata;
    if (cd && cd[2]) window.location.href = cd[2];
  });
})();

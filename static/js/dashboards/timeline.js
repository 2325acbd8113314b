/* Patient timeline: global score + blood gas (markers coloured by severity now), zone x exam heatmap,
   the risk model's course-class probabilities. */
(function () {
  "use strict";
  var data = LUS.json("timeline-data");
  var colours = LUS.json("dash-colours");
  if (!data || !data.exams.length) return;
  var KPA_TO_MMHG = 7.50062;
  var exams = data.exams;
  var scored = exams.filter(function (e) { return e.luss !== null; });
  // One protocol: the global score in points (0 to its maximum). Mixed protocols: % of each exam's maximum.
  var yMax = data.y_max;
  var GAS = {
    paco2: { label: "PaCO₂", key: "paco2_mmhg", pressure: true },
    pao2: { label: "PaO₂", key: "pao2_mmhg", pressure: true },
    pf: { label: "P/F ratio", key: "pf_ratio", pressure: false },
  };

  // Time as this user may see it: a date axis (clinicians, study admins) or days since day 0
  // (researchers see no calendar date; the server sends x and label accordingly).
  var byDate = data.time_axis === "date";
  var xHover = byDate ? "%{x|%Y-%m-%d %H:%M}" : "day %{x:.1f}";
  function dayText(day) {
    if (byDate) return LUS.dayText(day);
    return day === null || day === undefined ? "no day 0" : "day " + day + " since " + data.day_zero;
  }

  // Exam labels shared by the heatmap and the severity chart: date and day since admission.
  var seen = {};
  var labels = exams.map(function (e) {
    var label = byDate ? e.label.slice(0, 10) + (e.day !== null ? " (day " + e.day + ")" : "") : e.label;
    seen[label] = (seen[label] || 0) + 1;
    return seen[label] > 1 ? label + " #" + seen[label] : label;
  });

  // --- global score + gas -------------------------------------------------------------------
  var unscoredNote = document.getElementById("luss-unscored");
  var unscored = exams.length - scored.length;
  if (unscoredNote) {
    unscoredNote.textContent = unscored
      ? unscored + " of " + exams.length + " exams are not scored yet and have no point."
      : "Hover a point for the " + (byDate ? "date, day since admission" : "day") + ", score and severity.";
  }

  // Signed exams (reviewed, or amended since) are filled markers; the others hollow: their score of
  // record is the AI's, or readings nobody has signed yet.
  function signed(e) { return e.review_status === "reviewed" || e.review_status === "amended"; }
  function reviewText(e) {
    var read = Object.keys(e.zones).filter(function (k) { return e.zones[k] !== null; }).length;
    read = e.reviewed_zones + " of " + read + " zones read by a clinician";
    var when = e.signed_at ? " " + e.signed_at.slice(0, 16).replace("T", " ")
      : (e.signed_day !== null && e.signed_day !== undefined ? " day " + Number(e.signed_day).toFixed(1) : "");
    if (signed(e)) return e.review_status + ", signed by " + (e.signed_by || "?") + when + " (" + read + ")";
    return e.reviewed_zones ? "not signed yet (" + read + ")" : "AI, not reviewed";
  }

  // Like with like: the change over the zones scored at this exam and the previous one.
  function changeText(e) {
    var c = e.change;
    if (!c) return "first scored exam";
    if (c.delta === null) return "no zone scored at both this and the previous exam";
    return "change " + c.arrow + " " + (c.delta > 0 ? "+" : "") + c.delta + " over the " + c.zones +
      " zones scored at both exams";
  }

  // Severity now: the exam day's guideline class and WHO level (clinical record and blood gas).
  function nowText(e) {
    var n = e.severity_now;
    if (!n) return "–";
    return n.guideline_text + ", WHO " + n.who_scale + (n.missing.length ? " (missing: " + n.missing.join(", ") + ")" : "");
  }

  // The model's risk of a severe course of the stay, never 0 % or 100 % (clipped by the server).
  function riskText(e) {
    var r = e.risk_severe_course;
    if (!r) return "no risk yet";
    return Math.round(100 * r.probability) + " %" + (r.calibrated ? " (calibrated)" : " (not calibrated)") +
      ", course class " + r.course_class;
  }

  function lussTrace() {
    return {
      type: "scatter", mode: "lines+markers+text", name: "Global LUS score (score of record)", yaxis: "y",
      x: scored.map(function (e) { return e.x; }), y: scored.map(function (e) { return e.y; }),
      // Coverage beside every marker: a score over 8 of 12 zones is not a 12-zone score.
      text: scored.map(function (e) { return e.coverage; }), textposition: "top center",
      textfont: { size: 11, color: "#5d6b7a" },
      line: { color: "#0b6e8a", width: 2 },
      marker: { size: 13,
                symbol: scored.map(function (e) { return signed(e) ? "circle" : "circle-open"; }),
                line: { color: "#1d2733", width: scored.map(function (e) { return signed(e) ? 1 : 3; }) },
                color: scored.map(function (e) {
                  var now = e.severity_now && e.severity_now.guideline_class;
                  return now ? colours.now[now] : colours.none;
                }) },
      customdata: scored.map(function (e) {
        return [dayText(e.day), e.max_luss, nowText(e), LUS.fmt(e.mean_score, 2),
                e.severity_probs ? e.severity_probs.map(function (p) { return p.toFixed(2); }).join(" / ") : "–",
                reviewText(e), e.luss_ai === null || e.luss_ai === undefined ? "–" : e.luss_ai,
                e.luss, e.protocol, e.coverage, changeText(e), riskText(e)];
      }),
      hovertemplate: "<b>" + xHover + "</b> · %{customdata[0]}<br>Global LUS score of record <b>%{customdata[7]}</b>/%{customdata[1]} (%{customdata[8]}, %{customdata[9]})" +
        "<br>%{customdata[10]}" +
        "<br>%{customdata[5]}<br>AI's sum %{customdata[6]}" +
        "<br>Mean zone score %{customdata[3]}<br>Severity now: <b>%{customdata[2]}</b>" +
        "<br>Risk of a severe course (model): %{customdata[11]}" +
        "<br>Course class P(mild/moderate/severe/critical): %{customdata[4]}<extra></extra>",
    };
  }

  // Legend entries only (no data): what a filled and a hollow marker mean.
  function legendTraces() {
    return [["circle", 1, "Signed by a clinician (filled)"], ["circle-open", 3, "Not signed: AI, not reviewed (hollow)"]]
      .map(function (m) {
        return { type: "scatter", mode: "markers", name: m[2], x: [null], y: [null], hoverinfo: "skip",
                 marker: { symbol: m[0], size: 11, color: colours.none, line: { color: "#1d2733", width: m[1] } } };
      });
  }

  function gasTrace(gas, unit) {
    var g = GAS[gas];
    var u = g.pressure ? unit : "mmHg";
    var rows = data.blood_gases.filter(function (b) { return b[g.key] !== null; });
    return {
      type: "scatter", mode: "lines+markers", name: g.label + " (" + u + ")", yaxis: "y2",
      x: rows.map(function (b) { return b.x; }),
      y: rows.map(function (b) { var v = b[g.key]; return g.pressure && u === "kPa" ? v / KPA_TO_MMHG : v; }),
      line: { color: "#6a3d9a", width: 1.5, dash: "dot" }, marker: { symbol: "diamond", size: 9, color: "#6a3d9a" },
      customdata: rows.map(function (b) { return dayText(b.day); }),
      hovertemplate: "<b>" + xHover + "</b> · %{customdata}<br>" + g.label + " %{y:.1f} " + u + "<extra></extra>",
    };
  }

  var gasSelect = document.getElementById("gas-select");
  var unitSelect = document.getElementById("unit-select");
  var lussEl = document.getElementById("plot-luss");

  function drawLuss() {
    var gas = gasSelect.value;
    unitSelect.disabled = gas === "pf" || gas === "none";
    var traces = [lussTrace()];
    var layout = {
      font: LUS.font, margin: { t: 10, r: 80, b: 50, l: 70 },
      legend: { orientation: "h", x: 0, y: 1.12 },
      xaxis: byDate ? { title: { text: "Date (hover: day since admission)" }, type: "date" }
                    : { title: { text: data.time_axis_title }, type: "linear", zeroline: false },
      yaxis: { title: { text: data.y_title }, range: [0, yMax * 1.08], zeroline: false, automargin: true },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: data.threshold, y1: data.threshold,
                 line: { color: "#b00020", width: 1, dash: "dot" } }],
    };
    if (gas !== "none") {
      var t = gasTrace(gas, unitSelect.value);
      traces.push(t);
      // Own ticks (not synced to the score axis), so gas values read as round numbers.
      layout.yaxis2 = { title: { text: t.name }, overlaying: "y", side: "right", showgrid: false, zeroline: false,
                        tickmode: "auto", nticks: 6 };
    }
    if (scored.length) traces = traces.concat(legendTraces());
    if (!scored.length) {
      layout.annotations = [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
                              text: "No exam scored yet", font: { size: 16, color: "#5d6b7a" } }];
    }
    Plotly.react(lussEl, traces, layout, LUS.config);
  }
  gasSelect.addEventListener("change", drawLuss);
  unitSelect.addEventListener("change", drawLuss);
  drawLuss();

  // --- zone x exam heatmap ------------------------------------------------------------------
  function sourceText(d) {
    if (d.source === "clinician") return "read by " + (d.reader || "?");
    return d.source === "ai" ? "AI, not reviewed" : "";
  }
  function cellText(zone, e) {
    var d = e.zone_details[zone.key] || {};
    var head = "<b>" + zone.key + "</b> · " + zone.label + "<br>" + (byDate ? e.label + " · " : "") + dayText(e.day);
    var score = e.zones[zone.key];
    if (score === null || score === undefined) {
      if (e.protocol !== zone.protocol) return head + "<br>not a zone of this exam's protocol (" + e.protocol + ")";
      return head + "<br>" + (d.clip ? "clip not scored yet (click to open)" : "no clip for this zone");
    }
    var findings = Object.keys(d.findings || {})
      .filter(function (k) { return d.findings[k] >= 0.5; })
      .map(function (k) { return k.replace(/_/g, " ") + " " + d.findings[k].toFixed(2); });
    var ai = d.ai_score === null || d.ai_score === undefined ? "AI's score –" :
      "AI's score " + d.ai_score + (d.probs ? " · P(0/1/2/3) = " +
        d.probs.map(function (p) { return Number(p).toFixed(2); }).join(" / ") : "");
    return head + "<br>Score of record <b>" + score + "</b> · " + sourceText(d) + "<br>" + ai +
      "<br>AI findings: " + (findings.length ? findings.join(", ") : "none above 0.5") +
      "<br>Model " + (e.model_version || "–") + "<br><i>click to open the clip</i>";
  }
  // The cell's label: the record score, in brackets while it is the AI's (not reviewed).
  function cellLabel(zone, e) {
    var v = e.zones[zone.key], d = e.zone_details[zone.key] || {};
    if (v === null || v === undefined) return "";
    return d.source === "ai" ? "(" + v + ")" : String(v);
  }
  var z = data.zones.map(function (zone) {
    return exams.map(function (e) { var v = e.zones[zone.key]; return v === undefined ? null : v; });
  });
  var c = colours.scores;
  var heat = {
    type: "heatmap", name: "Zone scores of record", x: labels, y: data.zones.map(function (zone) { return zone.key; }), z: z,
    zmin: -0.5, zmax: 3.5, xgap: 3, ygap: 3, hoverongaps: true,
    colorscale: [[0, c[0]], [0.25, c[0]], [0.25, c[1]], [0.5, c[1]], [0.5, c[2]], [0.75, c[2]], [0.75, c[3]], [1, c[3]]],
    colorbar: { title: { text: "Score of record" }, tickvals: [0, 1, 2, 3], ticktext: colours.meanings, len: 0.9 },
    customdata: data.zones.map(function (zone) { return exams.map(function (e) { return cellText(zone, e); }); }),
    text: data.zones.map(function (zone) { return exams.map(function (e) { return cellLabel(zone, e); }); }),
    hovertemplate: "%{customdata}<extra></extra>",
    texttemplate: "%{text}", textfont: { size: 12 },
  };
  var heatEl = document.getElementById("plot-heatmap");
  Plotly.newPlot(heatEl, [heat], {
    font: LUS.font, margin: { t: 10, r: 20, b: 120, l: 200 }, plot_bgcolor: "#dfe4ea",
    xaxis: { title: { text: (byDate ? "Exam (date, day since admission)" : "Exam (" + data.time_axis_title.toLowerCase() + ")"), standoff: 20 }, type: "category", tickangle: -30,
             automargin: true },
    yaxis: { title: { text: "" }, type: "category", autorange: "reversed", automargin: true,
             tickvals: data.zones.map(function (zone) { return zone.key; }),
             ticktext: data.zones.map(function (zone) { return zone.tick; }) },
  }, LUS.config);
  heatEl.on("plotly_click", function (ev) {
    var idx = ev.points[0].pointIndex;  // [row, column]
    var d = exams[idx[1]].zone_details[data.zones[idx[0]].key];
    if (d && d.clip_url) window.location.href = d.clip_url;
  });

  // --- severity probabilities ---------------------------------------------------------------
  var sevEl = document.getElementById("plot-severity");
  var withSeverity = exams.filter(function (e) { return e.severity_probs; });
  if (!withSeverity.length) {
    sevEl.hidden = true;
    document.getElementById("severity-empty").hidden = false;
    return;
  }
  var classes = ["mild", "moderate", "severe", "critical"];
  var sevTraces = classes.map(function (cls, k) {
    return {
      type: "bar", name: "P(" + cls + ")", x: labels,
      y: exams.map(function (e) { return e.severity_probs ? e.severity_probs[k] : null; }),
      marker: { color: colours.severity[cls] },
      customdata: exams.map(function (e) { return e.severity || "no risk yet"; }),
      hovertemplate: "%{x}<br>P(" + cls + " course) = %{y:.2f}<br>Predicted course class: <b>%{customdata}</b>" +
        "<extra></extra>",
    };
  });
  Plotly.newPlot(sevEl, sevTraces, {
    font: LUS.font, barmode: "stack", margin: { t: 30, r: 20, b: 120, l: 70 },
    legend: { title: { text: "Course class" }, traceorder: "normal" },
    xaxis: { title: { text: (byDate ? "Exam (date, day since admission)" : "Exam (" + data.time_axis_title.toLowerCase() + ")"), standoff: 20 }, type: "category", tickangle: -30,
             automargin: true },
    yaxis: { title: { text: "Probability of the course class" }, range: [0, 1] },
    annotations: exams.map(function (e, i) {
      return { x: labels[i], y: 1, yanchor: "bottom", showarrow: false, font: { size: 11, color: "#5d6b7a" },
               text: e.risk_severe_course ? "risk " + Math.round(100 * e.risk_severe_course.probability) + " %" : "no risk yet" };
    }),
  }, LUS.config);
})();

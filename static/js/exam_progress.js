// Live scoring progress on the exam page.
// WebSocket messages (Redis channel layer) make it instant; polling the exam API keeps it
// working without Redis, and after a reconnect the server's snapshot brings the page up to date.
(function () {
  "use strict";
  const root = document.getElementById("scoring");
  if (!root) return;
  const examId = root.dataset.exam;
  const bar = document.getElementById("job-progress-bar");
  const label = document.getElementById("job-progress-label");
  const statusEl = document.getElementById("job-status");
  let finished = root.dataset.status === "succeeded" || root.dataset.status === "failed";
  let lastProgress = parseFloat(root.dataset.progress || "0");

  function show(status, progress, step) {
    if (typeof progress === "number" && !Number.isNaN(progress)) {
      lastProgress = Math.max(status === "pending" ? 0 : lastProgress, progress);
      const pct = Math.round(lastProgress * 100);
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
      label.textContent = pct + " %" + (step ? " · " + step : "");
    }
    if (status) { statusEl.textContent = status; root.dataset.status = status; }
    if ((status === "succeeded" || status === "failed") && !finished) {
      finished = true;
      // Show the new scores (a full reload keeps the page logic in one place: the server).
      setTimeout(function () { window.location.reload(); }, 600);
    }
  }

  function onMessage(msg) {
    if (msg.type === "snapshot") show(msg.scores.status, msg.scores.progress, "");
    else if (msg.type === "progress") show("running", msg.progress, msg.step);
    else if (msg.type === "finished") show("succeeded", 1.0, "finished");
    else if (msg.type === "failed") show("failed", lastProgress, msg.error);
    else if (msg.type === "superseded") show("pending", 0, "new clips arrived: scoring again");
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    try {
      const ws = new WebSocket(scheme + "://" + window.location.host + "/ws/exams/" + examId + "/");
      ws.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
      ws.onclose = function () { if (!finished) setTimeout(connect, 3000); };
    } catch (err) { /* polling below still works */ }
  }

  function poll() {
    if (finished) return;
    fetch("/api/v1/exams/" + examId + "/", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.scores) show(data.scores.status, data.scores.progress, data.scores.status === "running" ? "" : data.scores.status);
      })
      .catch(function () {})
      .finally(function () { if (!finished) setTimeout(poll, 1500); });
  }

  if (!finished && root.dataset.status !== "not_scored") { connect(); poll(); }
})();

// Live exam page: scoring progress, and the zones whose upload a worker is still checking.
// WebSocket messages (Redis channel layer) make it instant; polling the API keeps it working
// without Redis, and after a reconnect the server's snapshot brings the page up to date.
(function () {
  "use strict";
  const root = document.getElementById("scoring");
  if (!root) return;
  const examId = root.dataset.exam;
  const bar = document.getElementById("job-progress-bar");
  const label = document.getElementById("job-progress-label");
  const statusEl = document.getElementById("job-status");
  // The words of patients/templatetags/words.py (STATUS_WORDS), for live updates.
  const STATUS_WORDS = {not_scored: "not scored yet", pending: "queued", running: "scoring", succeeded: "scored",
    failed: "failed", superseded: "superseded by a newer job", cancelled: "cancelled"};
  const zones = document.getElementById("zones");
  let finished = root.dataset.status === "succeeded" || root.dataset.status === "failed";
  let lastProgress = parseFloat(root.dataset.progress || "0");
  // Uploads being checked (clip ids): the page reloads once each is ready or failed.
  const checking = new Set(((zones && zones.dataset.uploadsChecking) || "").split(",").filter(Boolean));
  let reloading = false;

  // A batch upload in progress or just finished (batch-upload.js) keeps its table: the status
  // above is updated in place, and its summary links to the reloaded page.
  function batchKeepsPage() {
    const batch = document.getElementById("batch-upload");
    return !!batch && (batch.dataset.state === "uploading" || batch.dataset.state === "done");
  }

  function reload() {
    if (reloading || batchKeepsPage()) return;
    reloading = true;
    // Show the new state (a full reload keeps the page logic in one place: the server).
    setTimeout(function () { window.location.reload(); }, 600);
  }

  function show(status, progress, step) {
    if (typeof progress === "number" && !Number.isNaN(progress)) {
      lastProgress = Math.max(status === "pending" ? 0 : lastProgress, progress);
      const pct = Math.round(lastProgress * 100);
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
      label.textContent = pct + " %" + (step ? " · " + step : "");
    }
    if (status) { statusEl.textContent = STATUS_WORDS[status] || status.replace(/_/g, " "); statusEl.dataset.code = status; root.dataset.status = status; }
    if ((status === "succeeded" || status === "failed") && !finished) {
      finished = true;
      reload();
    }
  }

  function clipChecked(id, status, error) {
    id = String(id);
    if (!checking.has(id) || status === "pending") return;
    checking.delete(id);
    const cell = document.querySelector("[data-upload='" + id + "']");
    if (cell) {
      cell.dataset.uploadStatus = status;
      cell.textContent = status === "failed" ? error : "ready";
    }
    reload();
  }

  function onMessage(msg) {
    if (msg.type === "snapshot") show(msg.scores.status, msg.scores.progress, "");
    else if (msg.type === "progress") show("running", msg.progress, msg.step);
    else if (msg.type === "finished") show("succeeded", 1.0, "finished");
    else if (msg.type === "failed") show("failed", lastProgress, msg.error);
    else if (msg.type === "superseded") show("pending", 0, "new clips arrived: scoring again");
    else if (msg.type === "clip") clipChecked(msg.clip, msg.status, msg.error || "");
  }

  function watching() { return !reloading && (!finished || checking.size > 0); }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    try {
      const ws = new WebSocket(scheme + "://" + window.location.host + "/ws/exams/" + examId + "/");
      ws.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
      ws.onclose = function () { if (watching()) setTimeout(connect, 3000); };
    } catch (err) { /* polling below still works */ }
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; });
  }

  function pollScoring() {
    if (finished || reloading) return;
    getJson("/api/v1/exams/" + examId + "/")
      .then(function (data) {
        if (data && data.scores) show(data.scores.status, data.scores.progress, data.scores.status === "running" ? "" : data.scores.status);
      })
      .catch(function () {})
      .finally(function () { if (!finished) setTimeout(pollScoring, 1500); });
  }

  function pollUploads() {
    if (checking.size === 0 || reloading) return;
    Promise.all(Array.from(checking).map(function (id) {
      return getJson("/api/v1/clips/" + id + "/").then(function (clip) {
        if (clip) clipChecked(clip.id, clip.status, clip.error || "");
      });
    }))
      .catch(function () {})
      .finally(function () { if (checking.size > 0) setTimeout(pollUploads, 1000); });
  }

  // An upload sent from this page (exam_upload.js) is followed like those the page was rendered with.
  let connected = false;
  document.addEventListener("lus:upload-accepted", function (e) {
    const first = checking.size === 0;
    checking.add(String(e.detail.id));
    if (!connected) { connected = true; connect(); }
    if (first) pollUploads();
  });

  const scoring = !finished && root.dataset.status !== "not_scored";
  if (!scoring) finished = true;
  if (scoring || checking.size > 0) { connected = true; connect(); }
  if (scoring) pollScoring();
  if (checking.size > 0) pollUploads();
})();

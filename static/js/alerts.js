// Live alerts: the header badge (the user's open alerts over their studies) and, on a page with
// the study's alert list (#study-alerts), the list itself. A WebSocket (/ws/alerts/) says when an
// alert is raised or acknowledged, with the user's new count; the list is fetched again from the
// server (one place renders it). Polling the count keeps the badge right without the channel
// (and is all there is on a server without WebSockets: data-socket="0").
(function () {
  "use strict";
  const badge = document.getElementById("alerts-badge");
  if (!badge) return;
  const count = document.getElementById("alerts-count");
  const card = document.getElementById("study-alerts");
  const POLL_MS = 60000;
  let fetching = null;

  function showCount(n) {
    if (typeof n !== "number" || Number.isNaN(n)) return;
    badge.dataset.count = String(n);
    badge.classList.toggle("has-alerts", n > 0);
    count.textContent = String(n);
  }

  function refreshList() {
    if (!card) return;
    if (fetching) return;
    const url = card.dataset.listUrl + "?back=" + encodeURIComponent(window.location.pathname + window.location.search);
    fetching = fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        document.getElementById("study-alerts-list").innerHTML = html;
        const studyCount = document.getElementById("study-alerts-count");
        if (studyCount) studyCount.textContent = String(card.querySelectorAll("#study-alerts-list tr.alert-row").length);
        card.dataset.updated = String(Date.now());
      })
      .catch(function () { /* the next message or a reload shows it */ })
      .finally(function () { fetching = null; });
  }

  function onMessage(msg) {
    if (msg.type === "snapshot") showCount(msg.count);
    else if (msg.type === "alert") {
      showCount(msg.count);
      if (card && String(msg.study) === card.dataset.study) refreshList();
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    try {
      const ws = new WebSocket(scheme + "://" + window.location.host + "/ws/alerts/");
      ws.onmessage = function (e) { onMessage(JSON.parse(e.data)); };
      ws.onopen = function () { badge.dataset.live = "1"; };
      ws.onclose = function () { badge.dataset.live = "0"; setTimeout(connect, 5000); };
    } catch (err) { /* polling below still works */ }
  }

  function poll() {
    fetch("/api/v1/alerts/summary/", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && typeof data.open === "number" && data.open !== parseInt(badge.dataset.count || "0", 10)) {
          showCount(data.open);
          refreshList();
        }
      })
      .catch(function () { /* try again later */ });
  }

  // The server says whether it speaks WebSockets (ASGI); otherwise only the polling runs.
  if (badge.dataset.socket === "1") connect();
  setInterval(poll, POLL_MS);
})();

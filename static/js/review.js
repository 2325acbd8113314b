/* Review mode of the exam page (templates/dashboards/_review.html): keyboard first.
   R opens it on the first zone in protocol order. Each zone plays its clip from ONE request (the frame
   strip, GET /clips/<id>/strip.png; the next zone's strip is prefetched), with the AI's suggestion
   pre-selected. 0-3 score, a/b/c/o/p/e toggle findings, Enter saves the reading
   (POST /api/v1/clips/<id>/readings/) and moves on, Backspace/Left goes back, Space pauses; after the
   last zone a summary, where Enter signs (POST /api/v1/exams/<id>/sign/). Escape closes.
   The page opened with ?review=1 (the worklist's links) starts in the mode, and closing it after a
   change goes back to the worklist it came from.
   Reads GET /api/v1/exams/<id>/: zones, clips[].{id, zone}, review_status and scores.zones[].{zone,
   clip, score, source, ai_score, confidence, in_domain, findings}. Without ai_score (before readings
   existed) the zone's score is the AI's. */
(function () {
  "use strict";
  const root = document.getElementById("review");
  const openButton = document.getElementById("review-open");
  if (!root || !openButton) return;
  const dialog = root.querySelector(".review-dialog");
  const examId = root.dataset.exam;
  const FINDINGS = { a: "a_lines", b: "b_lines", c: "confluent_b_lines", o: "consolidation",
                     p: "pleural_irregularity", e: "effusion" };
  const LABELS = { a_lines: "A-lines", b_lines: "B-lines", confluent_b_lines: "confluent B-lines",
                   consolidation: "consolidation", pleural_irregularity: "pleural irregularity", effusion: "effusion" };
  const $ = function (id) { return document.getElementById(id); };
  const state = { exam: null, zones: [], index: 0, view: "closed", busy: false, changed: false, signed: false };
  const strips = {};     // clip id -> Promise of {bitmap, count, width, height, fps, clipFrames}
  const player = { strip: null, frame: 0, playing: true, raf: null, t0: 0, f0: 0 };
  window.LUSReview = { state: state, player: player };

  // --- server -----------------------------------------------------------------------------------

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // JSON in and out; a refusal rejects with the server's ``error`` text.
  function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") { headers["Content-Type"] = "application/json"; headers["X-CSRFToken"] = csrfToken(); }
    return fetch(url, { method: method, credentials: "same-origin", headers: headers,
                        body: body === undefined ? undefined : JSON.stringify(body) })
      .catch(function (err) { throw new Error("The server could not be reached (" + err.message + ")."); })
      .then(function (r) {
        return r.text().then(function (text) {
          let data = null;
          try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
          if (!r.ok) throw new Error((data && (data.error || data.detail)) || text.slice(0, 300) || "HTTP " + r.status);
          return data;
        });
      });
  }

  function findingsFrom(raw) {
    const out = {};
    Object.keys(LABELS).forEach(function (key) {
      const v = raw ? raw[key] : null;
      out[key] = v === true || (typeof v === "number" && v > 0.5);  // AI probabilities before readings
    });
    return out;
  }

  // The zones to read, in protocol order: those with a clip.
  function zonesFrom(exam) {
    const labels = {}, clips = {}, scored = {};
    root.ownerDocument.querySelectorAll("#review-zone-labels li").forEach(function (li) {
      labels[li.dataset.zone] = li.textContent;
    });
    (exam.clips || []).forEach(function (c) { clips[c.zone] = c.id; });
    ((exam.scores || {}).zones || []).forEach(function (z) { scored[z.zone] = z; });
    return (exam.zones || []).filter(function (code) { return clips[code] !== undefined; }).map(function (code) {
      const s = scored[code] || {};
      const ai = "ai_score" in s ? s.ai_score : (s.score === undefined ? null : s.score);
      const mine = s.source === "clinician" && s.score !== null && s.score !== undefined;
      return { code: code, label: labels[code] || "", clip: clips[code], ai: ai,
               confidence: typeof s.confidence === "number" ? s.confidence : null, inDomain: s.in_domain,
               score: mine ? s.score : ai, findings: findingsFrom(s.findings), source: s.source || null,
               saved: false };
    });
  }

  // --- the clip player: one strip per clip, drawn frame by frame on a canvas ----------------------

  function loadStrip(clip) {
    if (!strips[clip]) {
      strips[clip] = fetch("/clips/" + clip + "/strip.png", { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) return r.text().then(function (t) { throw new Error(t || "HTTP " + r.status); });
        const h = function (name) { return Number(r.headers.get(name)) || 0; };
        const meta = { count: h("X-Frame-Count") || 1, width: h("X-Frame-Width"), height: h("X-Frame-Height"),
                       fps: h("X-Frame-Fps") || 25, clipFrames: h("X-Clip-Frame-Count") || 1 };
        return r.blob().then(createImageBitmap).then(function (bitmap) {
          meta.bitmap = bitmap;
          meta.width = meta.width || bitmap.width;
          meta.height = meta.height || Math.floor(bitmap.height / meta.count);
          return meta;
        });
      });
      strips[clip].catch(function () { /* shown when its zone is */ });
    }
    return strips[clip];
  }

  function draw(i) {
    const s = player.strip, canvas = $("review-canvas");
    if (!s) return;
    player.frame = i;
    canvas.getContext("2d").drawImage(s.bitmap, 0, i * s.height, s.width, s.height, 0, 0, s.width, s.height);
    $("review-frame").textContent = (i + 1) + " / " + s.count;
  }

  function tick(now) {
    const s = player.strip;
    if (!s || !player.playing) { player.raf = null; return; }
    // The strip plays in real time: fps * (strip frames / clip frames) strip frames per second.
    const rate = s.fps * s.count / Math.max(s.count, s.clipFrames);
    const i = (player.f0 + Math.floor((now - player.t0) / 1000 * rate)) % s.count;
    if (i !== player.frame) draw(i);
    player.raf = requestAnimationFrame(tick);
  }

  function play(on) {
    player.playing = on;
    if (player.raf) { cancelAnimationFrame(player.raf); player.raf = null; }
    if (on && player.strip && player.strip.count > 1) {
      player.t0 = performance.now();
      player.f0 = player.frame;
      player.raf = requestAnimationFrame(tick);
    }
  }

  function showStrip(z) {
    const canvas = $("review-canvas");
    player.strip = null;
    play(false);
    canvas.setAttribute("aria-label", "clip of zone " + z.code);
    $("review-frame").textContent = "loading the clip…";
    $("review-fps").textContent = "";
    loadStrip(z.clip).then(function (s) {
      if (state.view !== "zone" || current() !== z) return;
      canvas.width = s.width;
      canvas.height = s.height;
      player.strip = s;
      draw(0);
      $("review-fps").textContent = s.count > 1 ? "· " + Math.round(s.fps) + " fps" : "· still image";
      play(true);
    }, function (err) {
      if (current() === z) $("review-frame").textContent = "No images: " + err.message;
    });
  }

  // --- what the dialog shows ----------------------------------------------------------------------

  function current() { return state.zones[state.index]; }
  function announce(text) { $("review-live").textContent = text; }

  function aiText(z) {
    if (z.ai === null || z.ai === undefined) return "No AI suggestion for this zone";
    let text = "AI suggests " + z.ai + (z.confidence !== null ? " · probability " + Math.round(100 * z.confidence) + " %" : "");
    if (z.inDomain === false) text += " · unlike the training clips: read it yourself";
    return text;
  }

  function setError(message) {
    const el = $("review-error");
    el.textContent = message || "";
    el.hidden = !message;
  }

  function renderDots() {
    const ol = $("review-dots");
    ol.textContent = "";
    state.zones.forEach(function (z, i) {
      const li = document.createElement("li");
      li.textContent = z.code;
      li.className = (z.saved ? "saved s" + z.score : "") + (state.view === "zone" && i === state.index ? " current" : "");
      ol.appendChild(li);
    });
  }

  function renderChoices(z) {
    dialog.querySelectorAll("[data-score]").forEach(function (b) {
      const v = Number(b.dataset.score);
      b.setAttribute("aria-pressed", String(v === z.score));
      b.classList.toggle("ai", v === z.ai);
    });
    dialog.querySelectorAll("[data-finding]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(!!z.findings[b.dataset.finding]));
    });
  }

  function zoneSpeech(z) {
    const on = Object.keys(z.findings).filter(function (k) { return z.findings[k]; }).map(function (k) { return LABELS[k]; });
    return "Score " + (z.score === null ? "not chosen" : z.score) + ". Findings: " + (on.length ? on.join(", ") : "none") + ".";
  }

  function showZone(i) {
    state.index = i;
    state.view = "zone";
    const z = current();
    $("review-zone").hidden = false;
    $("review-summary").hidden = true;
    $("review-position").textContent = "zone " + (i + 1) + " of " + state.zones.length;
    $("review-zone-code").textContent = z.code;
    $("review-zone-label").textContent = z.label;
    $("review-ai").textContent = aiText(z);
    renderChoices(z);
    renderDots();
    setError("");
    showStrip(z);
    if (state.zones[i + 1]) loadStrip(state.zones[i + 1].clip);
    announce("Zone " + z.code + (z.label ? ", " + z.label : "") + ", " + (i + 1) + " of " + state.zones.length + ". "
             + aiText(z) + ". " + zoneSpeech(z));
  }

  function summaryRow(code, z) {
    const tr = document.createElement("tr");
    const cells = [code, z ? z.label : "", z && z.score !== null ? String(z.score) : "–",
                   z && z.ai !== null ? String(z.ai) : "–", !z ? "no clip" : z.saved ? "saved" : "not saved in this review"];
    cells.forEach(function (text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); });
    tr.dataset.zone = code;
    return tr;
  }

  function showSummary() {
    state.view = "summary";
    play(false);
    const byCode = {};
    state.zones.forEach(function (z) { byCode[z.code] = z; });
    const body = $("review-table").querySelector("tbody");
    body.textContent = "";
    (state.exam.zones || []).forEach(function (code) { body.appendChild(summaryRow(code, byCode[code])); });
    const sum = function (key) {
      return state.zones.reduce(function (t, z) { return t + (typeof z[key] === "number" ? z[key] : 0); }, 0);
    };
    const max = 3 * (state.exam.zones || []).length;
    $("review-luss").textContent = "LUSS " + sum("score") + " / " + max;
    $("review-luss-ai").textContent = "AI's sum " + sum("ai");
    $("review-zone").hidden = true;
    $("review-summary").hidden = false;
    $("review-position").textContent = "summary";
    renderDots();
    setError("");
    announce("Summary: LUSS " + sum("score") + " of " + max + ". " + (state.signed ? "Signed." : "Press Enter to sign the exam."));
  }

  function setStatus(status) {
    $("review-status").textContent = status ? "status: " + status : "";
    $("review-status").hidden = !status;
  }

  // --- actions ------------------------------------------------------------------------------------

  function setScore(v) {
    const z = current();
    z.score = v;
    renderChoices(z);
    announce("Zone " + z.code + ": score " + v + (v === z.ai ? " (the AI's)" : "") + ".");
  }

  function toggleFinding(key) {
    const z = current();
    z.findings[key] = !z.findings[key];
    renderChoices(z);
    announce(LABELS[key] + (z.findings[key] ? " on" : " off") + ".");
  }

  function save() {
    const z = current();
    if (state.busy) return;
    if (z.score === null || z.score === undefined) { setError("Choose a score first: keys 0 to 3."); return; }
    state.busy = true;
    setError("");
    announce("Saving zone " + z.code + "…");
    api("POST", "/api/v1/clips/" + z.clip + "/readings/", { score: z.score, findings: z.findings, comment: "" })
      .then(function () {
        z.saved = true;
        state.changed = true;
        if (state.index + 1 < state.zones.length) showZone(state.index + 1); else showSummary();
      }, function (err) {
        setError(err.message);
        announce("Zone " + z.code + " was not saved: " + err.message);
      })
      .finally(function () { state.busy = false; });
  }

  function sign() {
    if (state.busy) return;
    if (state.signed) { close(); return; }
    state.busy = true;
    setError("");
    announce("Signing the exam…");
    api("POST", "/api/v1/exams/" + examId + "/sign/").then(function (exam) {
      state.signed = true;
      state.changed = true;
      setStatus((exam && exam.review_status) || "reviewed");
      $("review-sign").innerHTML = "Signed · close <kbd>Enter</kbd>";
      announce("Exam signed" + (exam && exam.signed_by ? " by " + exam.signed_by : "") + ". Press Enter to close.");
    }, function (err) {
      setError(err.message);
      announce("Not signed: " + err.message);
    }).finally(function () { state.busy = false; });
  }

  function back() {
    if (state.view === "summary") showZone(state.zones.length - 1);
    else if (state.index > 0) showZone(state.index - 1);
  }

  function open() {
    if (state.view !== "closed") return;
    state.view = "loading";
    root.hidden = false;
    document.body.classList.add("review-active");
    $("review-zone").hidden = true;
    $("review-summary").hidden = true;
    $("review-position").textContent = "loading…";
    setError("");
    dialog.focus();
    api("GET", "/api/v1/exams/" + examId + "/").then(function (exam) {
      state.exam = exam;
      state.zones = zonesFrom(exam);
      state.signed = false;
      $("review-sign").innerHTML = "Sign the exam <kbd>Enter</kbd>";
      setStatus(exam.review_status);
      if (!state.zones.length) { state.view = "empty"; setError("This exam has no clips to review."); return; }
      showZone(0);
    }, function (err) { state.view = "empty"; setError(err.message); });
  }

  function close() {
    play(false);
    state.view = "closed";
    root.hidden = true;
    document.body.classList.remove("review-active");
    if (state.changed && state.back) { window.location.href = state.back; return; }  // the next exam to review
    if (state.changed) { window.location.reload(); return; }  // the page shows the new readings
    openButton.focus();
  }

  // --- keyboard and mouse -------------------------------------------------------------------------

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function trapFocus(e) {
    const items = Array.prototype.filter.call(dialog.querySelectorAll("button"), function (b) {
      return b.offsetParent !== null && !b.disabled;
    });
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (e.shiftKey && (document.activeElement === first || document.activeElement === dialog)) { last.focus(); e.preventDefault(); }
    else if (!e.shiftKey && document.activeElement === last) { first.focus(); e.preventDefault(); }
  }

  function zoneKey(k) {
    if (/^[0-3]$/.test(k)) setScore(Number(k));
    else if (FINDINGS[k.toLowerCase()]) toggleFinding(FINDINGS[k.toLowerCase()]);
    else if (k === "Enter") save();
    else if (k === " ") play(!player.playing);
    else return false;
    return true;
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    if (root.hidden) {
      if ((k === "r" || k === "R") && !typing(e.target)) { e.preventDefault(); open(); }
      return;
    }
    if (k === "Tab") { trapFocus(e); return; }
    // A focused button keeps its own Enter and Space.
    if ((k === "Enter" || k === " ") && e.target.tagName === "BUTTON" && dialog.contains(e.target)) return;
    let handled = true;
    if (k === "Escape") close();
    else if (k === "Backspace" || k === "ArrowLeft") back();
    else if (state.view === "summary" && k === "Enter") sign();
    else if (state.view === "zone") handled = zoneKey(k);
    else handled = false;
    if (handled) e.preventDefault();
  }

  function onClick(e) {
    const b = e.target.closest("button");
    if (!b || !dialog.contains(b)) return;
    if (b.dataset.score !== undefined && state.view === "zone") setScore(Number(b.dataset.score));
    else if (b.dataset.finding && state.view === "zone") toggleFinding(b.dataset.finding);
    else if (b.dataset.action === "save") save();
    else if (b.dataset.action === "back") back();
    else if (b.dataset.action === "sign") sign();
    else if (b.dataset.action === "close") close();
    if (b.dataset.score !== undefined || b.dataset.finding) dialog.focus();  // keys work again at once
  }

  document.addEventListener("keydown", onKey);
  dialog.addEventListener("click", onClick);
  openButton.addEventListener("click", open);

  // ?review=1 opens the mode at once (once: the address loses the parameter).
  const query = new URLSearchParams(window.location.search);
  if (query.get("review") === "1") {
    query.delete("review");
    const rest = query.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
    if (/\/studies\/\d+\/worklist\/$/.test(document.referrer.split("?")[0])) state.back = document.referrer;
    open();
  }
})();

// The exam page's batch upload (templates/dashboards/_batch_upload.html): drop or pick all of an
// exam's files at once. Each file's zone is read from its name with the rule of
// patients/imaging/zone_rules.py (zone_from_filename: the last zone code standing on its own in the
// name's stem), and a DICOM file's from its zone attribute by the study's rule (the server answers:
// POST /api/v1/exams/<id>/zone-hints/ with the first 256 KiB of each DICOM file). The user confirms
// or corrects each zone; Upload stays disabled until every file has its own zone of the protocol
// (and a zone that has a clip is only sent with "replace"). Each file then goes through the clip
// upload API (POST /api/v1/exams/<id>/clips/) with its own progress bar, and its row follows the
// check (GET /api/v1/clips/<id>/) until it is ready, or failed with the reason.
(function () {
  "use strict";
  const root = document.getElementById("batch-upload");
  if (!root || !window.fetch || !window.FormData || !window.XMLHttpRequest) return;
  const input = document.getElementById("batch-files");
  const drop = document.getElementById("batch-drop");
  const table = document.getElementById("batch-table");
  const body = table.querySelector("tbody");
  const button = document.getElementById("batch-upload-button");
  const clear = document.getElementById("batch-clear");
  const replace = document.getElementById("batch-replace");
  const problems = document.getElementById("batch-problems");
  const summary = document.getElementById("batch-summary");
  const options = document.getElementById("batch-zone-options");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const HEAD_BYTES = 256 * 1024;
  const POLL_MS = 1000;
  // zone_rules._NAME_ZONE (a test keeps the two the same).
  const NAME_ZONE = /(?<![A-Za-z0-9])([RL][1-8])(?![0-9])/gi;
  const codes = Array.from(options.options).map(function (o) { return o.value; }).filter(Boolean);
  const occupied = new Set(Array.from(options.options).filter(function (o) { return o.dataset.hasClip; })
    .map(function (o) { return o.value; }));
  let items = [];
  let uploading = false;

  // zone_rules.zone_from_filename: the last zone code of the protocol standing on its own in the stem.
  function zoneFromName(name) {
    let stem = name.split("/").pop().split("\\").pop();
    if (stem.indexOf(".") >= 0) stem = stem.slice(0, stem.lastIndexOf("."));
    const found = Array.from(stem.matchAll(NAME_ZONE)).map(function (m) { return m[1].toUpperCase(); })
      .filter(function (z) { return codes.indexOf(z) >= 0; });
    return found.length ? found[found.length - 1] : "";
  }

  function isDicom(file) {
    return file.slice(128, 132).arrayBuffer().then(function (buf) {
      return new TextDecoder("ascii").decode(buf) === "DICM";
    }).catch(function () { return false; });
  }

  function cell(row, cls, text) {
    const td = document.createElement("td");
    td.className = cls;
    if (text) td.textContent = text;
    row.append(td);
    return td;
  }

  function addRow(item) {
    const row = document.createElement("tr");
    row.dataset.file = item.file.name;
    cell(row, "name", item.file.name);
    const select = options.cloneNode(true);
    select.removeAttribute("id");
    select.hidden = false;
    select.name = "zone";
    select.setAttribute("aria-label", "zone of " + item.file.name);
    select.value = item.zone;
    select.addEventListener("change", function () {
      item.zone = select.value;
      // Back to the zone the file gave: its source again; another zone: the user's choice.
      item.source = item.zone && item.zone === item.hint.zone ? item.hint.source : "you";
      show(item);
      check();
    });
    cell(row, "zone").append(select);
    item.sourceCell = cell(row, "source");
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    cell(row, "progress").append(progress);
    item.result = cell(row, "result", "");
    item.row = row;
    item.select = select;
    item.progress = progress;
    body.append(row);
    show(item);
  }

  function show(item) {
    const words = { name: "file name", you: "chosen by you", "": "not found: choose the zone" };
    item.sourceCell.textContent = item.source === "dicom" ? "DICOM " + item.tag + ": " + item.value : words[item.source] || "";
    item.sourceCell.dataset.source = item.source;
    item.select.value = item.zone;
  }

  // Every file needs its own zone of the protocol; a zone with a clip needs "replace".
  function check() {
    const counts = {};
    items.forEach(function (it) { if (it.zone) counts[it.zone] = (counts[it.zone] || 0) + 1; });
    const notes = [];
    items.forEach(function (it) {
      const flags = [];
      if (!it.zone) flags.push("unknown");
      else if (counts[it.zone] > 1) flags.push("duplicate");
      if (it.zone && occupied.has(it.zone) && !replace.checked) flags.push("occupied");
      it.row.dataset.flags = flags.join(" ");
      it.row.classList.toggle("problem", flags.length > 0);
      if (flags.indexOf("unknown") >= 0) notes.push(it.file.name + ": choose its zone");
      if (flags.indexOf("duplicate") >= 0) notes.push(it.file.name + ": zone " + it.zone + " is given to another file too");
      if (flags.indexOf("occupied") >= 0) notes.push(it.file.name + ": zone " + it.zone + " has a clip (tick replace)");
    });
    problems.textContent = notes.join(" · ");
    problems.className = notes.length ? "warning" : "";
    button.disabled = uploading || items.length === 0 || notes.length > 0 || items.some(function (it) { return it.done !== undefined; });
  }

  // DICOM files: the server reads the zone attribute of the first 256 KiB by the study's rule.
  function askServer(dicoms) {
    if (!dicoms.length) return Promise.resolve();
    const data = new FormData();
    dicoms.forEach(function (it) { data.append("files", it.file.slice(0, HEAD_BYTES), it.file.name); });
    return fetch(root.dataset.hintsApi, {
      method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (answer) {
      if (!answer) return;
      answer.hints.forEach(function (h, i) {
        const it = dicoms[i];
        if (!it) return;
        it.tag = answer.tag;
        it.value = h.value;
        if (h.source !== "dicom") return;
        it.hint = { zone: h.zone, source: "dicom" };
        if (it.source !== "you") { it.zone = h.zone; it.source = "dicom"; }
        show(it);
      });
    }).catch(function () { /* the names' zones stand */ });
  }

  function addFiles(files) {
    if (uploading) return;
    if (items.some(function (it) { return it.done !== undefined; })) reset();
    const added = [];
    Array.from(files).forEach(function (file) {
      if (items.some(function (it) { return it.file.name === file.name && it.file.size === file.size; })) return;
      const zone = zoneFromName(file.name);
      const source = zone ? "name" : "";
      const item = { file: file, zone: zone, source: source, hint: { zone: zone, source: source }, tag: "", value: "" };
      items.push(item);
      added.push(item);
      addRow(item);
    });
    table.hidden = items.length === 0;
    check();
    Promise.all(added.map(function (it) { return isDicom(it.file); })).then(function (flags) {
      return askServer(added.filter(function (_, i) { return flags[i]; }));
    }).then(check);
  }

  function reset() {
    items = [];
    body.textContent = "";
    table.hidden = true;
    summary.textContent = "";
    root.dataset.state = "";
    check();
  }

  // The API's refusal in words (as exam_upload.js says it).
  function reason(answer, code) {
    if (answer && answer.error) return answer.error;
    if (answer && typeof answer === "object") {
      const key = Object.keys(answer)[0];
      if (key) return key + ": " + [].concat(answer[key]).join(" ");
    }
    return "the upload failed (HTTP " + code + ")";
  }

  function finish(item, result, text) {
    item.done = result;
    item.result.dataset.result = result;
    item.result.textContent = text;
    item.progress.value = 100;
    const left = items.filter(function (it) { return it.done === undefined || it.done === "checking"; }).length;
    if (left === 0) {
      const ready = items.filter(function (it) { return it.done === "ready"; }).length;
      summary.textContent = ready + " of " + items.length + " file" + (items.length === 1 ? "" : "s") + " ready" +
        (ready < items.length ? "; " + (items.length - ready) + " failed" : "") + ". ";
      const again = document.createElement("a");
      again.href = window.location.pathname;
      again.textContent = "Show the exam with its new clips";
      summary.append(again);
      root.dataset.state = "done";
    }
  }

  function follow(item, id) {
    fetch("/api/v1/clips/" + id + "/", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (clip) {
        if (clip && clip.status === "ready") finish(item, "ready", "ready: zone " + clip.zone);
        else if (clip && clip.status === "failed") finish(item, "failed", "failed: " + (clip.error || clip.code));
        else setTimeout(function () { follow(item, id); }, POLL_MS);
      }).catch(function () { setTimeout(function () { follow(item, id); }, POLL_MS); });
  }

  function send(item) {
    return new Promise(function (resolve) {
      const data = new FormData();
      data.append("file", item.file, item.file.name);
      data.append("zone", item.zone);
      data.append("replace", replace.checked ? "true" : "false");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", root.dataset.clipsApi);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) item.progress.value = Math.round(99 * e.loaded / e.total);
      });
      xhr.addEventListener("load", function () {
        let answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
        if (xhr.status === 202) {
          item.done = "checking";
          item.result.dataset.result = "checking";
          item.result.textContent = "received: checking the file…";
          follow(item, answer.id);
        } else if (xhr.status === 200) {
          finish(item, "ready", "ready: already stored as zone " + answer.zone);
        } else {
          finish(item, "failed", "failed: " + reason(answer, xhr.status));
        }
        resolve();
      });
      xhr.addEventListener("error", function () {
        finish(item, "failed", "failed: the upload did not reach the server");
        resolve();
      });
      item.result.dataset.result = "sending";
      item.result.textContent = "sending…";
      xhr.send(data);
    });
  }

  button.addEventListener("click", function () {
    check();
    if (button.disabled) return;
    uploading = true;
    root.dataset.state = "uploading";
    items.forEach(function (it) { it.select.disabled = true; });
    button.disabled = true;
    items.reduce(function (chain, it) { return chain.then(function () { return send(it); }); }, Promise.resolve())
      .then(function () { uploading = false; check(); });
  });
  input.addEventListener("change", function () { addFiles(input.files); input.value = ""; });
  replace.addEventListener("change", check);
  clear.addEventListener("click", function () { if (!uploading) reset(); });
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files) addFiles(e.dataTransfer.files);
  });
})();

// The exam page's upload form, sent as the API's upload is (POST /api/v1/exams/<id>/clips/, 202
// and the pending clip): the page is not rendered again for each file, the answer is shown in
// place, and exam_progress.js follows the check (it reloads the page once the clip is ready or
// failed). Without JavaScript the form posts to the page, which accepts it the same way.
(function () {
  "use strict";
  const form = document.getElementById("clip-upload");
  if (!form || !window.fetch || !window.FormData) return;
  const status = document.getElementById("clip-upload-status");
  const button = form.querySelector("button[type=submit]");

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "ok";
  }

  // The API's refusal in words: {"error": ...} from the services, {"field": ["..."]} from validation.
  function reason(body, code) {
    if (body && body.error) return body.error;
    if (body && typeof body === "object") {
      const key = Object.keys(body)[0];
      if (key) return key + ": " + [].concat(body[key]).join(" ");
    }
    return "the upload failed (HTTP " + code + ")";
  }

  // The zone's row says its file is being checked, as the page rendered after an upload would.
  function markChecking(zone, id) {
    const row = document.querySelector("tr[data-zone='" + zone + "']");
    if (!row) return;
    const span = document.createElement("span");
    span.className = "checking";
    span.textContent = "checking the file…";
    let cell = row.querySelector(".upload-state") || row.querySelector("td.empty");
    if (!cell) {  // a replacement of the zone's clip: noted under the clip's device
      cell = document.createElement("small");
      row.lastElementChild.append(document.createElement("br"), cell);
      cell.append("replacement: ");
    } else {
      cell.textContent = "";
    }
    cell.classList.remove("empty");
    cell.classList.add("upload-state");
    cell.dataset.upload = String(id);
    cell.dataset.uploadStatus = "pending";
    cell.append(span);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const data = new FormData(form);
    const file = data.get("file");
    const name = file && file.name ? file.name : "the file";
    data.set("replace", form.querySelector("input[name=replace]").checked ? "true" : "false");
    data.delete("csrfmiddlewaretoken");
    button.disabled = true;
    say("Sending " + name + "…", false);
    fetch(form.dataset.api, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": form.querySelector("input[name=csrfmiddlewaretoken]").value, Accept: "application/json" },
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) { return { r: r, body: body }; });
    }).then(function (res) {
      if (res.r.status === 202) {
        say(name + " received for zone " + res.body.zone + ": checking the file…", false);
        markChecking(res.body.zone, res.body.id);
        document.dispatchEvent(new CustomEvent("lus:upload-accepted", { detail: { id: res.body.id } }));
        form.reset();
      } else if (res.r.status === 200) {
        say(name + " was already stored as zone " + res.body.zone + ".", false);
      } else {
        say(name + ": " + reason(res.body, res.r.status), true);
      }
    }).catch(function (err) {
      say(name + ": the upload did not reach the server (" + err.message + ").", true);
    }).finally(function () { button.disabled = false; });
  });
})();

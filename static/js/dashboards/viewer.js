/* Clip viewer: cine players (one MP4 per clip), the frame model's expected score per frame (seeks
   on click) with the frames the clip model read marked, the clip model's heat map of those frames
   on demand (503 -> message), Reg-STN's two crops of the frame on screen (a network's score),
   previous exam of the same zone side by side. */
(function () {
  "use strict";
  var data = LUS.json("viewer-data");
  if (!data) return;

  function Player(root, p, key) {
    var self = this;
    var T = p.frame_count;
    var fps = p.play_fps;
    // One request per clip: an MP4 whose frame i is shown from i / fps; the trace, slider and
    // counter follow the frame on screen (requestVideoFrameCallback, or timeupdate + animation frames).
    var video = root.querySelector(".frame-video");
    var overlay = root.querySelector(".overlay");
    var slider = root.querySelector(".slider");
    var counter = root.querySelector(".counter");
    var playBtn = root.querySelector(".play");
    var toggle = root.querySelector(".gradcam-toggle");
    var status = root.querySelector(".status");
    var plotEl = document.getElementById("plot-frames-" + key);
    // Reg-STN's two crops of every frame (fractions of the frame), drawn over the frame on screen.
    var cropSvg = root.querySelector("svg.crops");
    var cropToggle = root.querySelector(".crops-toggle");
    var crops = p.crops || null;
    var overlays = {};   // frame -> object URL
    var captions = {};   // frame -> what its heat map shows
    var pending = {};
    var ex = p.explanation || {};
    // The frames the model behind the clip score read (only they have a heat map); unknown: [].
    var read = ex.read_frames || [];
    var isRead = function (i) { return !ex.model || read.indexOf(i) >= 0; };
    self.readFrames = read;
    var raf = null;
    self.index = -1;
    self.playing = false;
    self.video = video;
    self.painted = 0;    // frames presented since load (requestVideoFrameCallback), for tests and benchmarks
    self.firstFrameAt = null;  // performance.now() when the first frame could be shown (the benchmark's figure)
    video.addEventListener("loadeddata", function () { if (self.firstFrameAt === null) self.firstFrameAt = performance.now(); });
    if (video.readyState >= 2) self.firstFrameAt = performance.now();  // it arrived before this script ran

    function setStatus(text, isError) {
      status.textContent = text;
      status.classList.toggle("error", !!isError);
    }

    function frameList(frames) {
      var names = frames.map(function (f) { return String(f + 1); });
      return names.length > 1 ? names.slice(0, -1).join(", ") + " and " + names[names.length - 1] : names.join("");
    }

    function caption(i, r) {
      var score = r.headers.get("X-Explained-Score");
      var share = r.headers.get("X-Summary-Share");
      var who = ex.model === "network" ? ex.arch_label : "the clip model";
      var text = "Heat map of frame " + (i + 1) + ": where it holds " + who + "'s evidence for score " + score +
        " (red = most; one scale for the " + read.length + " frames it read).";
      if (share !== null) {
        text += " The summary images of the whole clip carry " + Math.round(Number(share) * 100) + " % of that evidence.";
      }
      return text;
    }

    function showOverlay(i) {
      if (!toggle.checked) { overlay.hidden = true; return; }
      if (!isRead(i)) {
        overlay.hidden = true;
        if (!self.playing) setStatus("The clip model read frames " + frameList(read) + " only (◆ on the curve): go to one to see its heat map.");
        return;
      }
      if (overlays[i]) { overlay.src = overlays[i]; overlay.hidden = false; if (!self.playing) setStatus(captions[i]); return; }
      if (pending[i]) return;
      pending[i] = true;
      if (!self.playing) setStatus("Computing the clip model's heat map of frame " + (i + 1) + "…");
      fetch(p.gradcam_url + i + ".png", { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) {
          return r.text().then(function (text) { throw new Error(text || ("HTTP " + r.status)); });
        }
        captions[i] = caption(i, r);
        return r.blob();
      }).then(function (blob) {
        overlays[i] = URL.createObjectURL(blob);
        delete pending[i];
        if (self.index === i && toggle.checked) {
          overlay.src = overlays[i]; overlay.hidden = false; setStatus(captions[i]);
        }
      }).catch(function (err) {
        delete pending[i];
        toggle.checked = false;
        overlay.hidden = true;
        setStatus(err.message, true);
      });
    }

    function showCrops(i) {
      if (!cropSvg || !crops) return;
      cropSvg.style.display = cropToggle && !cropToggle.checked ? "none" : "";
      var boxes = crops[i] || [];
      cropSvg.querySelectorAll("rect.crop").forEach(function (rect, k) {
        var b = boxes[k];
        if (!b) { rect.setAttribute("visibility", "hidden"); return; }
        rect.setAttribute("x", b[0]); rect.setAttribute("y", b[1]);
        rect.setAttribute("width", Math.max(0, b[2] - b[0])); rect.setAttribute("height", Math.max(0, b[3] - b[1]));
        rect.setAttribute("visibility", "visible");
      });
      cropSvg.dataset.frame = String(i);
    }

    // The frame shown at media time t (seconds): frame i spans [i / fps, (i + 1) / fps).
    self.frameAt = function (t) { return Math.max(0, Math.min(T - 1, Math.floor(t * fps + 1e-3))); };

    // Trace, slider, counter and overlay for frame i (the video itself is not moved).
    function mark(i) {
      if (i === self.index) return;
      self.index = i;
      slider.value = String(i);
      counter.textContent = (i + 1) + " / " + T;
      showOverlay(i);
      showCrops(i);
      if (plotEl && plotEl.data) {
        Plotly.relayout(plotEl, { "shapes[0].x0": i, "shapes[0].x1": i });
      }
    }

    // Show frame i: seek to the middle of its display interval, so rounding never lands on its neighbour.
    self.show = function (i) {
      i = Math.max(0, Math.min(T - 1, Math.round(i)));
      var t = (i + 0.5) / fps;
      if (video.duration && t > video.duration) t = Math.max(0, video.duration - 0.001);
      video.currentTime = t;
      mark(i);
    };

    if (typeof video.requestVideoFrameCallback === "function") {
      var onFrame = function (now, meta) {
        self.painted += 1;
        if (self.firstFrameAt === null) self.firstFrameAt = now;
        mark(self.frameAt(meta.mediaTime));
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    } else {
      var follow = function () {
        mark(self.frameAt(video.currentTime));
        if (self.playing) raf = window.requestAnimationFrame(follow);
      };
      video.addEventListener("timeupdate", follow);
      video.addEventListener("play", function () { raf = window.requestAnimationFrame(follow); });
    }
    video.addEventListener("seeked", function () { mark(self.frameAt(video.currentTime)); });

    self.play = function () {
      if (T < 2) return;
      self.playing = true;
      playBtn.textContent = "⏸ Pause";
      playBtn.setAttribute("aria-pressed", "true");
      var started = video.play();
      if (started && started.catch) started.catch(function (err) { setStatus("The video could not play: " + err.message, true); });
    };
    self.pause = function () {
      self.playing = false;
      playBtn.textContent = "▶ Play";
      playBtn.setAttribute("aria-pressed", "false");
      var wasPlaying = !video.paused;
      video.pause();
      // Settle on the frame the trace shows (the clock may stop a little before the frame on screen).
      if (wasPlaying && self.index >= 0) self.show(self.index);
      if (raf) window.cancelAnimationFrame(raf);
      raf = null;
    };
    video.addEventListener("error", function () {
      setStatus("The clip's video could not be loaded" + (video.error ? " (" + video.error.message + ")" : "") + ".", true);
    });
    playBtn.addEventListener("click", function () { if (self.playing) self.pause(); else self.play(); });
    slider.addEventListener("input", function () { self.pause(); self.show(Number(slider.value)); });
    toggle.addEventListener("change", function () { setStatus(""); showOverlay(self.index); });
    if (cropToggle) cropToggle.addEventListener("change", function () { showCrops(self.index); });
    // The frames the clip model read, named on the page: a click shows that frame with its heat map.
    root.querySelectorAll(".read-frame").forEach(function (btn) {
      btn.addEventListener("click", function () {
        self.pause();
        toggle.checked = true;
        self.index = -1;  // redraw the overlay even when that frame is already on screen
        self.show(Number(btn.dataset.frame));
      });
    });

    if (plotEl && p.expected_scores.length) {
      var xs = p.expected_scores.map(function (_, i) { return i; });
      var traces = [{
        type: "scatter", mode: "lines+markers", name: "Frame model: expected score", x: xs, y: p.expected_scores,
        line: { color: "#0b6e8a", width: 2 }, marker: { size: 7 },
        customdata: p.frame_probs.map(function (r) { return r.map(function (v) { return v.toFixed(2); }).join(" / "); }),
        hovertemplate: "Frame %{x}<br>Frame model: expected score %{y:.2f}<br>P(0/1/2/3) = %{customdata}<extra>click to show</extra>",
      }];
      // shapes[0] is the frame on screen; the clip score is a dashed line across the plot.
      var shapes = [{ type: "line", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1, line: { color: "#b00020", width: 2 } }];
      var notes = [];
      if (ex.model === "clip-heads") {
        traces.push({
          type: "scatter", mode: "markers", name: "Read by the clip model", x: read,
          y: read.map(function (i) { return p.expected_scores[i]; }),
          marker: { symbol: "diamond-open", size: 14, color: "#5b2a86", line: { width: 2 } },
          hovertemplate: "Frame %{x}: read by the clip model<extra>click to show</extra>",
        });
      }
      if (p.clip_score !== null && p.clip_score !== undefined && ex.model !== "frame-head" && ex.model !== "network") {
        shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: p.clip_score, y1: p.clip_score,
                      line: { color: "#5b2a86", width: 1.5, dash: "dash" } });
        notes.push({ xref: "paper", x: 1, xanchor: "right", y: p.clip_score, yanchor: "bottom", showarrow: false,
                     text: "clip score " + p.clip_score + " (clip model)", font: { color: "#5b2a86", size: 11 } });
      }
      Plotly.newPlot(plotEl, traces, {
        font: LUS.font, height: 220, margin: { t: 10, r: 10, b: 45, l: 60 }, showlegend: false,
        xaxis: { title: { text: "Frame (0 = first)" }, range: [-0.5, T - 0.5], zeroline: false },
        yaxis: { title: { text: "Frame model (0–3)" }, range: [-0.1, 3.1], dtick: 1, zeroline: false },
        shapes: shapes, annotations: notes,
      }, LUS.config);
      plotEl.on("plotly_click", function (ev) { self.pause(); self.show(ev.points[0].x); });
    }
    self.show(0);
  }

  var players = {};
  ["current", "previous"].forEach(function (key) {
    var root = document.getElementById("player-" + key);
    if (root && data[key]) players[key] = new Player(root, data[key], key);
  });
  window.LUSViewer = players;
  var both = document.getElementById("play-both");
  if (!players.previous) both.disabled = true;
  both.addEventListener("click", function () {
    Object.keys(players).forEach(function (k) { players[k].pause(); players[k].show(0); players[k].play(); });
  });
})();

// classicfer kiosk: camera -> POST /predict -> boxes, labels and smoothed probability bars.
// Plain JavaScript, no libraries, nothing fetched from outside this server, nothing stored
// (no cookies, no localStorage; frames live only in memory until the next one replaces them).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const overlay = $("overlay");
  const ctx = overlay.getContext("2d");
  const grab = document.createElement("canvas");
  const gctx = grab.getContext("2d");

  const MAX_WIDTH = 640;   // frames are scaled down to this width before sending
  const ALPHA = 0.35;      // weight of the newest frame in the smoothed probabilities
  const MATCH_IOU = 0.2;   // a face is the same as last frame's if the boxes overlap this much

  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
  const query = new URLSearchParams(location.search);
  let rate = clamp(parseFloat(query.get("rate") || document.body.dataset.rate) || 5, 0.5, 30);

  let labels = [];
  let minConfidence = 0;    // below this smoothed top probability the face is "uncertain"
  let running = true;
  let busy = false;
  let nextSend = 0;
  let failures = 0;
  let tracks = [];          // [{box, probs: {label: p} or null, guess, status, text}]
  let frameW = 0, frameH = 0;
  const completed = [];     // times of answered frames, for the frames/s display
  let lastLatency = 0;      // ms, last round trip

  function showState(text) { $("camera-state").textContent = text; }

  async function loadModel() {
    try {
      const r = await fetch("/model", { cache: "no-store" });
      const m = await r.json();
      labels = m.labels || [];
      minConfidence = (m.thresholds && m.thresholds.min_confidence) || 0;
      const name = (m.model && m.model.name) || "?";
      $("model-name").textContent = `model: ${name} · detector: ${m.detector || "?"}`;
    } catch (e) {
      $("model-name").textContent = "model information unavailable";
    }
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showState("The camera is not available here: open this page as http://localhost:PORT " +
                "(or over https).");
      return false;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      video.srcObject = stream;
      await video.play();
      showState("");
      return true;
    } catch (e) {
      showState(`No camera (${e.name || "error"}): allow camera access and reload the page.`);
      return false;
    }
  }

  function probsOf(face) {
    const p = face.probabilities;
    if (Array.isArray(p)) {
      const out = {};
      p.forEach((v, i) => { out[labels[i] || String(i)] = v; });
      return out;
    }
    if (p && typeof p === "object") return { ...p };
    return null;  // e.g. status "too_small": the face is not classified
  }

  function argmax(probs) {
    let best = null, bv = -1;
    for (const [k, v] of Object.entries(probs)) if (v > bv) { bv = v; best = k; }
    return best;
  }

  function iou(a, b) {
    const [ax, ay, aw, ah] = a, [bx, by, bw, bh] = b;
    const ix = Math.max(0, Math.min(ax + aw, bx + bw) - Math.max(ax, bx));
    const iy = Math.max(0, Math.min(ay + ah, by + bh) - Math.max(ay, by));
    const inter = ix * iy, union = aw * ah + bw * bh - inter;
    return union > 0 ? inter / union : 0;
  }

  // Exponential smoothing per face; faces are matched to last frame's by box overlap.
  function updateTracks(faces) {
    const used = new Set();
    const next = [];
    for (const f of faces) {
      if (!Array.isArray(f.box) || f.box.length !== 4) continue;
      const probs = probsOf(f);
      let best = -1, bestIou = MATCH_IOU;
      tracks.forEach((t, i) => {
        const v = iou(t.box, f.box);
        if (!used.has(i) && v > bestIou) { bestIou = v; best = i; }
      });
      let smooth = probs;
      if (best >= 0) used.add(best);
      if (best >= 0 && probs && tracks[best].probs) {
        const old = tracks[best].probs;
        smooth = {};
        for (const k of Object.keys(probs)) smooth[k] = ALPHA * probs[k] + (1 - ALPHA) * (old[k] ?? probs[k]);
      }
      const guess = smooth ? argmax(smooth) : null;
      const sure = guess !== null && smooth[guess] >= minConfidence;
      next.push({ box: f.box, probs: smooth, guess, status: f.status || "ok",
                  text: guess === null ? "face too small" : (sure ? guess : "uncertain") });
    }
    tracks = next;
  }

  function ordered(probs) {
    const keys = labels.length ? labels.filter((k) => k in probs) : Object.keys(probs);
    return keys.map((k) => [k, probs[k]]);
  }

  function draw() {
    const cw = overlay.clientWidth, ch = overlay.clientHeight, dpr = window.devicePixelRatio || 1;
    if (overlay.width !== Math.round(cw * dpr) || overlay.height !== Math.round(ch * dpr)) {
      overlay.width = Math.round(cw * dpr);
      overlay.height = Math.round(ch * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    if (!frameW || !frameH) return;
    // The video is drawn with object-fit: contain; map frame pixels to the same box.
    const s = Math.min(cw / frameW, ch / frameH);
    const ox = (cw - frameW * s) / 2, oy = (ch - frameH * s) / 2;
    const mirror = $("mirror").checked;
    for (const t of tracks) {
      let [x, y, w, h] = t.box;
      if (mirror) x = frameW - x - w;
      const X = ox + x * s, Y = oy + y * s, W = w * s, H = h * s;
      const colour = t.guess === null ? "#9e9e9e" : (t.text === "uncertain" ? "#ffb300" : "#3ddc84");
      ctx.lineWidth = 3;
      ctx.strokeStyle = colour;
      ctx.strokeRect(X, Y, W, H);
      const text = t.guess === null ? t.text
        : `${t.text} ${Math.round(100 * (t.probs[t.guess] || 0))}%`;
      ctx.font = "bold 18px system-ui, sans-serif";
      const tw = ctx.measureText(text).width;
      const ty = Y >= 26 ? Y - 26 : Y + H + 2;
      ctx.fillStyle = "rgba(0, 0, 0, 0.7)";
      ctx.fillRect(X, ty, tw + 12, 24);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, X + 6, ty + 18);
      if (!t.probs) continue;
      // Probability bars beside the box (right if there is room, else left).
      const entries = ordered(t.probs);
      const nameW = 66, barW = 110, rowH = 15;
      let bx = X + W + 8;
      if (bx + nameW + barW + 4 > cw) bx = Math.max(0, X - nameW - barW - 12);
      let by = Math.max(0, Math.min(Y, ch - entries.length * rowH));
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
      ctx.fillRect(bx, by, nameW + barW + 4, entries.length * rowH + 2);
      for (const [k, v] of entries) {
        ctx.fillStyle = "#ddd";
        ctx.fillText(k, bx + 4, by + 12);
        ctx.fillStyle = "#333";
        ctx.fillRect(bx + nameW, by + 3, barW, rowH - 5);
        ctx.fillStyle = k === t.guess ? colour : "#4aa3ff";
        ctx.fillRect(bx + nameW, by + 3, barW * clamp(v, 0, 1), rowH - 5);
        by += rowH;
      }
    }
  }

  function updatePanel() {
    $("nfaces").textContent = String(tracks.length);
    const top = $("top-label");
    const bars = $("bars");
    if (!tracks.length) {
      top.textContent = "no face";
      top.dataset.label = "";
      bars.replaceChildren();
      return;
    }
    const main = tracks.reduce((a, b) => (b.box[2] * b.box[3] > a.box[2] * a.box[3] ? b : a));
    top.textContent = main.text;
    top.dataset.label = main.guess || "";  // the best guess, even when uncertain
    const rows = ordered(main.probs || {}).map(([k, v]) => {
      const row = document.createElement("div");
      row.className = "bar" + (k === main.guess ? " top" : "");
      const name = document.createElement("span");
      name.textContent = k;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(100 * clamp(v, 0, 1)).toFixed(1)}%`;
      track.append(fill);
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = `${Math.round(100 * v)}%`;
      row.append(name, track, pct);
      return row;
    });
    bars.replaceChildren(...rows);
  }

  // Answered frames per second over the last (up to) 10 answers within 20 s; 0 when no
  // answer came for 3 s (or 3 round trips, if slower).
  function updateRate() {
    const now = performance.now();
    while (completed.length && (completed[0] < now - 20000 || completed.length > 10)) {
      completed.shift();
    }
    const n = completed.length;
    const last = n ? completed[n - 1] : 0;
    let fps = 0;
    if (n >= 2 && now - last < Math.max(3000, 3 * lastLatency)) fps = (n - 1) / ((last - completed[0]) / 1000);
    $("fps").textContent = fps.toFixed(1);
  }

  async function send() {
    busy = true;
    try {
      const vw = video.videoWidth, vh = video.videoHeight;
      if (!vw || !vh) return;
      const sc = Math.min(1, MAX_WIDTH / vw);
      const w = Math.round(vw * sc), h = Math.round(vh * sc);
      if (grab.width !== w || grab.height !== h) { grab.width = w; grab.height = h; }
      gctx.drawImage(video, 0, 0, w, h);
      const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
      if (!blob) throw new Error("could not encode the camera frame");
      const t0 = performance.now();
      const r = await fetch("/predict", { method: "POST", cache: "no-store",
        headers: { "Content-Type": "image/jpeg" }, body: blob });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(body.message || `HTTP ${r.status}`);
      lastLatency = performance.now() - t0;
      $("latency").textContent = String(Math.round(lastLatency));
      frameW = w; frameH = h;
      updateTracks(body.faces || []);
      completed.push(performance.now());
      failures = 0;
      $("message").textContent = "";
      updatePanel();
      draw();
    } catch (e) {
      failures += 1;
      $("message").textContent = `Server problem: ${e.message}`;
      nextSend = performance.now() + Math.min(5000, 250 * 2 ** failures);  // back off
    } finally {
      busy = false;
    }
  }

  function loop() {
    const now = performance.now();
    if (running && !busy && video.readyState >= 2 && now >= nextSend) {
      nextSend = now + 1000 / rate;
      send();
    }
    setTimeout(loop, 15);
  }

  $("rate").value = String(rate);
  $("rate").addEventListener("change", () => {
    rate = clamp(parseFloat($("rate").value) || rate, 0.5, 30);
    $("rate").value = String(rate);
  });
  $("mirror").addEventListener("change", () => {
    video.classList.toggle("mirror", $("mirror").checked);
    draw();
  });
  video.classList.toggle("mirror", $("mirror").checked);
  $("toggle").addEventListener("click", () => {
    running = !running;
    $("toggle").textContent = running ? "Pause" : "Resume";
    $("notice").querySelector("strong").textContent = running
      ? "Emotion recognition is running." : "Emotion recognition is paused.";
  });
  window.addEventListener("resize", draw);
  setInterval(updateRate, 500);

  (async () => {
    await loadModel();
    if (await startCamera()) loop();
  })();
})();

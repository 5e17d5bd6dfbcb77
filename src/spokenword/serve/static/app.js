// spokenword page: record (getUserMedia -> 16-bit mono WAV made here) or pick/drop a file,
// POST it to /predict?spectrogram=true and show the digit, class bars, features and history.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY_LENGTH = 8;
let recorder = null; // {context, stream, node, source, chunks}

function say(text, kind = "") {
  const el = $("message");
  el.textContent = text;
  el.className = kind;
}

// Float32 samples in [-1, 1] at `rate` Hz -> a 16-bit PCM mono WAV Blob.
function encodeWav(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

async function startRecording() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
    say(denied ? "Microphone access was denied: allow it in the browser's site settings, or choose a file instead."
               : `No microphone available (${err && err.name}): choose a file instead.`, "error");
    return;
  }
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const node = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  source.connect(node);
  node.connect(context.destination);
  recorder = { context, stream, node, source, chunks };
  $("record").textContent = "\u25A0 Stop";
  $("record").classList.add("recording");
  say("Listening... say one digit, then press Stop.");
}

async function stopRecording() {
  const { context, stream, node, source, chunks } = recorder;
  recorder = null;
  source.disconnect(); node.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = context.sampleRate;
  await context.close();
  $("record").textContent = "\u25CF Record";
  $("record").classList.remove("recording");
  const length = chunks.reduce((n, c) => n + c.length, 0);
  if (length === 0) { say("Nothing was recorded: try again.", "error"); return; }
  const samples = new Float32Array(length);
  let offset = 0;
  for (const c of chunks) { samples.set(c, offset); offset += c.length; }
  await classify(encodeWav(samples, rate), "microphone");
}

async function classify(blob, name) {
  say(`Classifying ${name}...`);
  let response, answer;
  try {
    // the bytes, not the Blob: same request, and its body is visible to tools that inspect traffic
    const body = await blob.arrayBuffer();
    response = await fetch("/predict?spectrogram=true", { method: "POST", body, headers: { "Content-Type": blob.type || "application/octet-stream" } });
    answer = await response.json();
  } catch (err) {
    say(`Could not reach the server: ${err}`, "error");
    return;
  }
  if (!response.ok) { say(`${name}: ${answer.detail || response.statusText}`, "error"); return; }
  show(answer, name);
}

function show(answer, name) {
  $("result").hidden = false;
  $("digit").textContent = answer.label;
  $("confidence").textContent = `${(answer.score * 100).toFixed(1)}% confident`;
  $("digit").parentElement.classList.toggle("silent", answer.silent);
  if (answer.silent) say("No speech heard: the clip is (nearly) silent. Speak closer to the microphone.", "warn");
  else say(`${name}: ${answer.duration_s.toFixed(2)} s`);
  drawBars(answer.top_k);
  if (answer.spectrogram) drawSpectrogram(answer.spectrogram);
  const item = document.createElement("li");
  item.textContent = `${answer.label}  ${(answer.score * 100).toFixed(0)}%  ${name}${answer.silent ? " (silent)" : ""}`;
  const history = $("history");
  history.prepend(item);
  while (history.children.length > HISTORY_LENGTH) history.lastChild.remove();
}

async function drawBars(ranked) {
  if (!window.labels) window.labels = (await (await fetch("/labels")).json()).labels;
  const score = Object.fromEntries(ranked.map((r) => [r.label, r.score]));
  const chart = $("bars");
  chart.replaceChildren();
  for (const label of window.labels) {
    const bar = document.createElement("div");
    bar.className = "bar" + (label === ranked[0].label ? " top" : "");
    const fill = document.createElement("div");
    fill.style.height = `${((score[label] || 0) * 85).toFixed(1)}%`;
    fill.title = `${label}: ${((score[label] || 0) * 100).toFixed(1)}%`;
    bar.append(fill, document.createTextNode(label));
    chart.append(bar);
  }
}

// rows = frequency bins (low first), columns = frames; drawn low frequencies at the bottom.
function drawSpectrogram(rows) {
  const canvas = $("spectrogram");
  const h = rows.length, w = rows[0].length;
  canvas.width = w; canvas.height = h;
  let lo = Infinity, hi = -Infinity;
  for (const r of rows) for (const v of r) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const t = hi > lo ? (rows[h - 1 - y][x] - lo) / (hi - lo) : 0;
    const i = (y * w + x) * 4;
    image.data[i] = 255 * Math.min(1, t * 1.6); image.data[i + 1] = 255 * Math.max(0, t * 1.6 - 0.6);
    image.data[i + 2] = 255 * (0.35 + 0.65 * Math.max(0, t - 0.7) / 0.3) * (t > 0.05 ? 1 : t * 20); image.data[i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

$("record").addEventListener("click", () => (recorder ? stopRecording() : startRecording()));
$("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) classify(f, f.name); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) classify(f, f.name);
});
if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
  say("This browser cannot record here (microphone needs https or localhost): choose a file instead.", "warn");
}

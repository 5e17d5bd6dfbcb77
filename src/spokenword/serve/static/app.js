// spokenword page. One-digit mode: record (getUserMedia -> 16-bit mono WAV made here) or pick/drop
// a file, POST it to /predict?spectrogram=true and show the digit, class bars, features and history.
// Continuous mode: stream the microphone over the WebSocket /ws/transcribe (AudioWorklet, float32
// frames at the model's rate) and show each digit as soon as the server has heard the word end.
// A model may answer "not a word" (_unknown_: other speech, _silence_: noise): shown as such, never as a digit.
// Teach tab (only when the server has teaching on): record or upload takes of a new word, train, and the
// page, /predict and the continuous mode use the new model from then on.
"use strict";

const $ = (id) => document.getElementById(id);
const HISTORY_LENGTH = 8;
const FRAME_SECONDS = 0.02; // continuous mode: audio per WebSocket frame
// what the page shows for the rejection labels (spokenword.labels), in the big answer and under the bars
const REJECTIONS = { _unknown_: { answer: "not a digit", bar: "other" }, _silence_: { answer: "no speech", bar: "noise" } };
let recorder = null; // one-digit mode: {context, stream, node, source, chunks}
let live = null; // continuous mode: see startLive
// Timings of the continuous mode, for measurements (python -m benchmarks.serve live --browser): per
// digit, ms from sending the audio frame that let the server close the word to receiving the
// event (latency_ms), and from receiving it to the next painted frame (paint_ms). Last 200.
window.spokenwordLive = { timings: [] };

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

function mode() {
  return $("mode-continuous").checked ? "continuous" : "single";
}

async function openMicrophone(tell = say) {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
    tell(denied ? "Microphone access was denied: allow it in the browser's site settings, or choose a file instead."
               : `No microphone available (${err && err.name}): choose a file instead.`, "error");
    return null;
  }
}

function setButton(active) {
  const continuous = mode() === "continuous";
  $("record").textContent = active ? "\u25A0 Stop" : (continuous ? "\u25CF Listen" : "\u25CF Record");
  $("record").classList.toggle("recording", active);
}

// One clip from the microphone (the one-digit mode and the Teach tab): openRecorder() starts capturing,
// closeRecorder(rec) stops and returns the 16-bit WAV Blob of what was heard (null if nothing was).
async function openRecorder(tell = say) {
  const stream = await openMicrophone(tell);
  if (!stream) return null;
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const node = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  source.connect(node);
  node.connect(context.destination);
  return { context, stream, node, source, chunks };
}

async function closeRecorder(rec) {
  const { context, stream, node, source, chunks } = rec;
  source.disconnect(); node.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = context.sampleRate;
  await context.close();
  const length = chunks.reduce((n, c) => n + c.length, 0);
  if (length === 0) return null;
  const samples = new Float32Array(length);
  let offset = 0;
  for (const c of chunks) { samples.set(c, offset); offset += c.length; }
  return encodeWav(samples, rate);
}

async function startRecording() {
  if (teach.recorder) await stopTake();
  const rec = await openRecorder();
  if (!rec) return;
  recorder = rec;
  setButton(true);
  say("Listening... say one digit, then press Stop.");
}

async function stopRecording() {
  const rec = recorder;
  recorder = null;
  const wav = await closeRecorder(rec);
  setButton(false);
  if (!wav) { say("Nothing was recorded: try again.", "error"); return; }
  await classify(wav, "microphone");
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

// "not a digit" / "no speech" for an answer that is not a word (answer.word false), else null
function rejection(answer) {
  if (answer.word !== false) return null;
  return (REJECTIONS[answer.label] || REJECTIONS._unknown_).answer;
}

function show(answer, name) {
  const not = rejection(answer);
  $("result").hidden = false;
  $("digit").textContent = not || answer.label;
  $("confidence").textContent = `${(answer.score * 100).toFixed(1)}% confident`;
  $("digit").parentElement.classList.toggle("silent", answer.silent);
  $("digit").parentElement.classList.toggle("rejected", Boolean(not));
  $("digit").parentElement.classList.toggle("long", !not && answer.label.length > 2); // a taught word, not a digit
  if (answer.silent) say("No speech heard: the clip is (nearly) silent. Speak closer to the microphone.", "warn");
  else if (not) say(`${name}: ${answer.duration_s.toFixed(2)} s; ${answer.label === "_silence_" ? "no speech, only noise" : "not one of the digits"}.`, "warn");
  else say(`${name}: ${answer.duration_s.toFixed(2)} s`);
  drawBars(answer.top_k);
  if (answer.spectrogram) drawSpectrogram(answer.spectrogram);
  const item = document.createElement("li");
  item.textContent = `${not || answer.label}  ${(answer.score * 100).toFixed(0)}%  ${name}${answer.silent ? " (silent)" : ""}`;
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
    bar.append(fill, document.createTextNode(REJECTIONS[label] ? REJECTIONS[label].bar : label));
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

// ---- continuous mode ----------------------------------------------------------------------
async function startLive() {
  const stream = await openMicrophone();
  if (!stream) return;
  let rate = null;
  try { rate = (await (await fetch("/health")).json()).sample_rate; } catch (err) { /* the WebSocket will say */ }
  // capture at the model's rate: the browser resamples, so the server need not (no extra delay)
  let context = null, source = null;
  try {
    context = rate ? new AudioContext({ sampleRate: rate }) : new AudioContext();
    source = context.createMediaStreamSource(stream);
  } catch (err) {
    if (context) context.close();
    context = new AudioContext(); // this browser cannot: send its own rate, the server resamples
    source = context.createMediaStreamSource(stream);
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/transcribe`);
  ws.binaryType = "arraybuffer";
  live = { ws, context, stream, source, node: null, sink: null, stopping: false, serverError: null,
           rate: context.sampleRate, sent: 0, frames: [], heard: "", ignored: 0 };
  const mine = live;
  $("transcript").replaceChildren();
  $("ignored").hidden = true;
  $("live").hidden = false;
  setButton(true);
  say("Connecting...");
  ws.onopen = () => ws.send(JSON.stringify({ sample_rate: mine.context.sampleRate, encoding: "float32" }));
  ws.onmessage = (e) => { if (live === mine) onLiveMessage(mine, JSON.parse(e.data)); };
  ws.onclose = (e) => onLiveClose(mine, e);
}

async function startCapture(state) {
  const { context, source } = state;
  const frameSamples = Math.max(1, Math.round(context.sampleRate * FRAME_SECONDS));
  if (context.audioWorklet && window.AudioWorkletNode) {
    await context.audioWorklet.addModule("/static/pcm-worklet.js");
    if (state.captureStopped) return; // stopped while the module loaded
    state.node = new AudioWorkletNode(context, "pcm-capture", { processorOptions: { frameSamples } });
    state.node.port.onmessage = (e) => sendFrame(state, e.data);
  } else { // older browsers: the deprecated ScriptProcessorNode
    state.node = context.createScriptProcessor(1024, 1, 1);
    state.node.onaudioprocess = (e) => sendFrame(state, new Float32Array(e.inputBuffer.getChannelData(0)));
  }
  state.sink = context.createGain(); // silent: keeps the capture node pulled by the graph
  state.sink.gain.value = 0;
  source.connect(state.node);
  state.node.connect(state.sink);
  state.sink.connect(context.destination);
  if (context.state === "suspended") await context.resume();
  window.spokenwordLive.base_latency_ms = (context.baseLatency || 0) * 1000;
}

function sendFrame(state, samples) {
  const ws = state.ws;
  if (state.stopping || ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > 1 << 20) { // over a second of audio queued: the connection cannot keep up
    state.serverError = "The connection is too slow for live audio; stopped.";
    ws.close(1000);
    return;
  }
  ws.send(samples.buffer);
  state.sent += samples.length;
  state.frames.push([state.sent, performance.now()]);
  if (state.frames.length > 1000) state.frames.splice(0, 500);
}

function onLiveMessage(state, event) {
  if (event.type === "ready") {
    say(`Listening: say digits, pausing briefly between them; each appears when its word ends. Press Stop when done.`);
    startCapture(state).catch((err) => {
      state.serverError = `Could not capture audio (${err && err.name}: ${err && err.message}).`;
      state.ws.close(1000);
    });
  } else if (event.type === "word") {
    const received = performance.now();
    showWord(state, event);
    // the frame that carried the audio up to event.decided_at (seconds at the model's rate)
    const needed = event.decided_at * state.rate;
    const frame = state.frames.find(([end]) => end >= needed - 1);
    requestAnimationFrame(() => {
      const timings = window.spokenwordLive.timings;
      timings.push({ label: event.label, latency_ms: frame ? received - frame[1] : null, paint_ms: performance.now() - received });
      if (timings.length > 200) timings.shift();
    });
  } else if (event.type === "rejected") {
    showIgnored(state, event);
  } else if (event.type === "error") {
    state.serverError = event.detail;
  } else if (event.type === "done") {
    state.done = event;
  }
}

function showWord(state, event) {
  const span = document.createElement("span");
  span.textContent = event.uncertain ? "?" : event.label;
  span.className = event.uncertain ? "word uncertain" : "word";
  span.title = `${event.label}: ${(event.score * 100).toFixed(0)}% (${event.start.toFixed(2)}-${event.end.toFixed(2)} s)`;
  $("transcript").append(span);
  state.heard += span.textContent;
}

// a sound that was not a digit: counted beside the transcript, never in it
function showIgnored(state, event) {
  state.ignored += 1;
  const what = (REJECTIONS[event.label] || REJECTIONS._unknown_).answer;
  const note = $("ignored");
  note.textContent = `Ignored ${state.ignored} sound${state.ignored === 1 ? "" : "s"} that ${state.ignored === 1 ? "was" : "were"} ` +
    `not a digit; last: ${what} at ${event.start.toFixed(1)}-${event.end.toFixed(1)} s.`;
  note.hidden = false;
}

function stopCapture(state) {
  if (state.captureStopped) return;
  state.captureStopped = true;
  try { if (state.node) { state.source.disconnect(); state.node.disconnect(); state.sink.disconnect(); } } catch (err) { /* gone */ }
  state.stream.getTracks().forEach((t) => t.stop());
  state.context.close().catch(() => {});
}

function stopLive() {
  const state = live;
  state.stopping = true;
  stopCapture(state);
  setButton(false);
  if (state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "stop" })); // the server sends the last word, then closes
    say("Finishing...");
    setTimeout(() => { if (state.ws.readyState !== WebSocket.CLOSED) state.ws.close(1000); }, 3000);
  } else {
    state.ws.close();
  }
}

function onLiveClose(state, e) {
  stopCapture(state);
  if (live === state) { live = null; setButton(false); }
  if (state.serverError) {
    say(state.serverError, "error");
  } else if (state.stopping) {
    say(state.heard ? `Stopped. Heard ${state.heard}.` : "Stopped. No digits were heard.");
  } else {
    say(`Connection lost (code ${e.code}${e.reason ? `: ${e.reason}` : ""}): the server closed the stream or cannot be reached. ` +
        "Press Listen to try again.", "error");
  }
  if (state.heard) {
    const item = document.createElement("li");
    item.textContent = `${state.heard}  (continuous)`;
    $("history").prepend(item);
    while ($("history").children.length > HISTORY_LENGTH) $("history").lastChild.remove();
  }
}

$("record").addEventListener("click", () => {
  if (recorder) stopRecording();
  else if (live) stopLive();
  else if (mode() === "continuous") startLive();
  else startRecording();
});
for (const radio of document.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => {
    if (recorder) stopRecording();
    if (live) stopLive();
    $("live").hidden = mode() !== "continuous";
    setButton(false);
    say(mode() === "continuous" ? "Continuous mode: press Listen and say a number." : "");
  });
}
$("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) classify(f, f.name); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) classify(f, f.name);
});
$("live").hidden = mode() !== "continuous"; // the browser may restore the radio buttons on reload
setButton(false);
if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
  say("This browser cannot record here (microphone needs https or localhost): choose a file instead.", "warn");
}

// ---- Teach tab ----------------------------------------------------------------------------------
// Shown only when GET /teach says teaching is on (spokenword serve --teach DIR). A word is named, its
// takes recorded (the same microphone path as the one-digit mode) or uploaded, listed, played back and
// deleted; Train adapts the model on the server, which serves the new one as soon as it is ready.
const TOKEN_KEY = "spokenword-teach-token";
const POLL_MS = 500;
const teach = { state: null, recorder: null, timer: null, polling: false, urls: [] };

function teachSay(text, kind = "") {
  const el = $("teach-message");
  el.textContent = text;
  el.className = kind;
}

function teachHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

// fetch a teach route: the parsed JSON answer, or throws an Error whose message is the server's detail
async function teachFetch(path, options = {}) {
  const response = await fetch(path, { ...options, headers: teachHeaders(options.headers || {}) });
  let body = null;
  try { body = await response.json(); } catch (err) { /* not JSON */ }
  if (!response.ok) throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  return body;
}

function showTab(name) {
  for (const tab of ["recognise", "teach"]) {
    $(`panel-${tab}`).hidden = tab !== name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
  }
  if (name === "teach") {
    if (recorder) stopRecording();
    if (live) stopLive();
    refreshTeach();
  } else if (teach.recorder) {
    stopTake();
  }
}

async function refreshTeach() {
  let state;
  try { state = await teachFetch("/teach"); } catch (err) { teachSay(`Could not reach the server: ${err.message}`, "error"); return; }
  teach.state = state;
  const locked = state.token_required && !state.authorized;
  $("teach-auth").hidden = !locked;
  $("teach-work").hidden = locked;
  if (locked) { teachSay("This server needs its teach token: enter it to teach.", "warn"); return; }
  $("teach-limits").textContent = `Record at least ${state.limits.min_takes} takes of each word ` +
    `(up to ${state.limits.max_takes}, each under ${state.limits.max_clip_seconds} s; at most ${state.limits.max_words} words).`;
  renderWords(state.words);
  $("teach-train").disabled = !state.can_train || state.training.state === "running";
  if (!state.can_train) teachSay(state.detail, "error");
  showTraining(state.training, state.model.labels);
  if (state.training.state === "running") pollTraining();
}

function renderWords(words) {
  for (const url of teach.urls) URL.revokeObjectURL(url);
  teach.urls = [];
  const list = $("teach-words");
  list.replaceChildren();
  for (const word of words) {
    const item = document.createElement("li");
    item.className = "teach-word";
    item.dataset.word = word.id;
    const name = document.createElement("button");
    name.type = "button"; name.className = "word-name"; name.textContent = word.name;
    name.title = "record more takes of this word";
    name.addEventListener("click", () => { $("teach-word").value = word.name; $("teach-word").focus(); });
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${word.takes.length} take${word.takes.length === 1 ? "" : "s"}${word.known ? " (the model knows it)" : ""}`;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "delete-word"; remove.textContent = "Delete word";
    remove.addEventListener("click", () => deleteTeach(`/teach/words/${encodeURIComponent(word.id)}`, `"${word.name}" deleted.`));
    const takes = document.createElement("ol");
    takes.className = "takes";
    for (const take of word.takes) {
      const row = document.createElement("li");
      row.dataset.take = take.id;
      const player = document.createElement("audio");
      player.controls = true; player.preload = "none";
      if (sessionStorage.getItem(TOKEN_KEY)) loadAuthorized(player, take.url); // an <audio> cannot send the token itself
      else player.src = take.url;
      const length = document.createElement("span");
      length.textContent = `${take.seconds.toFixed(1)} s`;
      const drop = document.createElement("button");
      drop.type = "button"; drop.className = "delete-take"; drop.textContent = "\u2715"; drop.title = "delete this take";
      drop.addEventListener("click", () => deleteTeach(take.url, "Take deleted."));
      row.append(player, length, drop);
      takes.append(row);
    }
    item.append(name, count, remove, takes);
    list.append(item);
  }
  $("teach-empty").hidden = words.length > 0;
}

async function loadAuthorized(player, url) {
  try {
    const response = await fetch(url, { headers: teachHeaders() });
    if (!response.ok) return;
    const blob = URL.createObjectURL(await response.blob());
    teach.urls.push(blob);
    player.src = blob;
  } catch (err) { /* the list shows the take; it just cannot be played */ }
}

async function deleteTeach(url, done) {
  try {
    const answer = await teachFetch(url, { method: "DELETE" });
    renderWords(answer.words);
    teachSay(done);
  } catch (err) { teachSay(err.message, "error"); }
}

function wordName() {
  const name = $("teach-word").value.trim();
  if (!name) { teachSay("Type the word first, then record it.", "error"); $("teach-word").focus(); }
  return name;
}

async function uploadTake(name, blob, what) {
  teachSay(`Saving ${what}...`);
  try {
    const body = await blob.arrayBuffer();
    const answer = await teachFetch(`/teach/words/${encodeURIComponent(name)}/takes`,
      { method: "POST", body, headers: { "Content-Type": blob.type || "application/octet-stream" } });
    teachSay(`Take ${answer.word.count} of "${answer.word.name}" saved (${answer.take.seconds.toFixed(1)} s).`);
    await refreshTeach();
    return true;
  } catch (err) {
    teachSay(`${what}: ${err.message}`, "error");
    return false;
  }
}

function setTakeButton(active) {
  $("teach-record").textContent = active ? "\u25A0 Stop" : "\u25CF Record take";
  $("teach-record").classList.toggle("recording", active);
}

async function startTake() {
  const name = wordName();
  if (!name) return;
  const rec = await openRecorder(teachSay);
  if (!rec) return;
  teach.recorder = { rec, name };
  setTakeButton(true);
  teachSay(`Recording: say "${name}" once, then press Stop.`);
  // stop before the server's limit, so a forgotten Stop still gives a usable take
  const limit = teach.state ? teach.state.limits.max_clip_seconds : 5;
  teach.timer = setTimeout(() => { if (teach.recorder && teach.recorder.rec === rec) stopTake(); }, Math.max(1, limit - 0.3) * 1000);
}

async function stopTake() {
  const { rec, name } = teach.recorder;
  teach.recorder = null;
  clearTimeout(teach.timer);
  setTakeButton(false);
  const wav = await closeRecorder(rec);
  if (!wav) { teachSay("Nothing was recorded: try again.", "error"); return; }
  await uploadTake(name, wav, "the recording");
}

function showTraining(status, labels) {
  const bar = $("teach-progress");
  bar.hidden = status.state !== "running";
  bar.value = status.progress || 0;
  const el = $("teach-status");
  if (status.state === "running") {
    el.textContent = `Training (${status.stage}, ${Math.round(100 * (status.progress || 0))}%)...`;
    el.className = "";
  } else if (status.state === "done") {
    const words = (status.labels || labels).filter((l) => !REJECTIONS[l]);
    el.textContent = `Done: the model now knows ${words.join(", ")}. Try it in the Recognise tab.`;
    el.className = "done";
  } else if (status.state === "failed") {
    el.textContent = `Training failed: ${status.detail}`;
    el.className = "error";
  } else {
    el.textContent = "";
    el.className = "";
  }
}

async function pollTraining() {
  if (teach.polling) return;
  teach.polling = true;
  $("teach-train").disabled = true;
  try {
    for (;;) {
      let status;
      try { status = await teachFetch("/teach/train"); } catch (err) { teachSay(err.message, "error"); break; }
      showTraining(status, []);
      if (status.state !== "running") {
        if (status.state === "done") window.labels = null; // the bars follow the new model's labels
        teach.polling = false;
        await refreshTeach(); // which words the served model knows now
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    teach.polling = false;
    $("teach-train").disabled = Boolean(teach.state && !teach.state.can_train);
  }
}

async function train() {
  if (teach.recorder) await stopTake();
  $("teach-train").disabled = true;
  try {
    const status = await teachFetch("/teach/train", { method: "POST" });
    teachSay("");
    showTraining(status, []);
  } catch (err) {
    teachSay(err.message, "error");
    $("teach-train").disabled = false;
    return;
  }
  await pollTraining();
}

$("tab-recognise").addEventListener("click", () => showTab("recognise"));
$("tab-teach").addEventListener("click", () => showTab("teach"));
$("teach-record").addEventListener("click", () => (teach.recorder ? stopTake() : startTake()));
$("teach-word").addEventListener("keydown", (e) => { if (e.key === "Enter" && !teach.recorder) startTake(); });
$("teach-file").addEventListener("change", async (e) => {
  const name = wordName();
  const files = [...e.target.files];
  e.target.value = "";
  if (!name) return;
  for (const f of files) if (!(await uploadTake(name, f, f.name))) break;
});
$("teach-train").addEventListener("click", train);
$("teach-token-save").addEventListener("click", () => {
  const token = $("teach-token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  $("teach-token").value = "";
  refreshTeach();
});
// the Teach tab only where the server has teaching on
fetch("/teach").then((r) => (r.ok ? r.json() : null)).then((state) => {
  if (state && state.enabled) $("tabs").hidden = false;
}).catch(() => { /* no teaching here */ });

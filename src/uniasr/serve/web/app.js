// uniasr web page: microphone (AudioWorklet -> 16 kHz PCM16) or a file -> websocket (FunASR 2pass
// protocol) -> transcript. Each reply's text replaces the text shown for its span: partials (pass 1, grey)
// cover what pass 2 has not refreshed yet; refreshes and finals (black) cover the utterance from its start.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const wsUrl =
  (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/" +
  (token ? "?token=" + encodeURIComponent(token) : "");

const streams = []; // {title, utterances: Map(index -> {partial, partialStart, refresh, refreshEnd, final})}
window.uniasr = { streams, messages: 0, errors: [], events: { partial: 0, refresh: 0, final: 0 } }; // for tests
let mic = null; // {ws, ctx, media, node}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
  if (isError) window.uniasr.errors.push(text);
}

function render() {
  const box = $("transcript");
  box.textContent = "";
  for (const s of streams) {
    const p = document.createElement("p");
    const title = document.createElement("span");
    title.className = "stream-title";
    title.textContent = s.title;
    p.appendChild(title);
    const keys = [...s.utterances.keys()].sort((a, b) => a - b);
    for (const k of keys) {
      const u = s.utterances.get(k);
      const utt = document.createElement("span");
      utt.className = "utterance";
      const add = (text, cls) => {
        if (!text) return;
        const span = document.createElement("span");
        span.className = cls;
        span.textContent = text;
        utt.appendChild(span);
      };
      if (u.final !== null) add(u.final, "final");
      else {
        add(u.refresh, "pass2");
        add(u.partial, "pass1");
      }
      if (utt.childNodes.length) p.appendChild(utt);
    }
    box.appendChild(p);
  }
}

function onReply(stream, msg) {
  window.uniasr.messages += 1;
  if (msg.error) {
    setStatus("server error: " + msg.error, true);
    return;
  }
  if (msg.is_end) {
    setStatus("done: " + stream.title);
    return;
  }
  if (msg.event in window.uniasr.events) window.uniasr.events[msg.event] += 1;
  const k = msg.utterance || 0;
  if (!stream.utterances.has(k)) {
    stream.utterances.set(k, { partial: "", partialStart: 0, refresh: "", refreshEnd: 0, final: null });
  }
  const u = stream.utterances.get(k);
  const [start, end] = msg.span || [0, 0];
  if (msg.event === "partial") {
    u.partial = msg.text;
    u.partialStart = start;
  } else if (msg.event === "refresh") {
    u.refresh = msg.text;
    u.refreshEnd = end;
    if (u.partialStart < end) u.partial = ""; // that pass-1 text is covered by the refresh now
  } else if (msg.event === "final") {
    u.final = msg.text;
  }
  render();
}

function openStream(title, start) {
  const stream = { title, utterances: new Map() };
  streams.push(stream);
  render();
  const ws = new WebSocket(wsUrl);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    onReply(stream, msg);
    if (msg.is_end) ws.close(1000); // one stream per connection here
  };
  ws.onerror = () => setStatus("websocket error (is the server running? is the token right?)", true);
  ws.onclose = (e) => {
    if (e.code !== 1000 && e.code !== 1005) setStatus("closed: " + e.code + " " + e.reason, true);
  };
  const opened = new Promise((resolve) => {
    ws.onopen = () => {
      ws.send(JSON.stringify(start));
      resolve();
    };
  });
  return { ws, opened };
}

function startMessage(extra) {
  return Object.assign(
    {
      mode: $("mode").value,
      wav_name: "browser",
      wav_format: "pcm",
      audio_fs: 16000,
      is_speaking: true,
      chunk_size: [5, 10, 5],
      chunk_interval: 10,
      itn: $("itn").checked,
      hotwords: "",
    },
    extra || {}
  );
}

async function startMic() {
  $("start").disabled = true;
  try {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule("/worklet.js");
    await ctx.resume();
    const node = new AudioWorkletNode(ctx, "pcm16-capture", {
      processorOptions: { targetRate: 16000, chunkMs: 60 },
    });
    const mute = ctx.createGain();
    mute.gain.value = 0;
    node.connect(mute).connect(ctx.destination); // keeps the graph pulling audio, silently
    const { ws, opened } = openStream("microphone " + new Date().toLocaleTimeString(), startMessage());
    await opened;
    node.port.onmessage = (e) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(e.data);
    };
    ctx.createMediaStreamSource(media).connect(node);
    mic = { ws, ctx, media, node };
    $("stop").disabled = false;
    setStatus("recording at " + ctx.sampleRate + " Hz, sending 16 kHz PCM16");
  } catch (err) {
    $("start").disabled = false;
    setStatus("microphone: " + err, true);
  }
}

function stopMic() {
  if (!mic) return;
  const { ws, ctx, media, node } = mic;
  mic = null;
  node.port.onmessage = null;
  media.getTracks().forEach((t) => t.stop());
  ctx.close();
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ is_speaking: false }));
  $("stop").disabled = true;
  $("start").disabled = false;
  setStatus("finishing ...");
}

async function uploadFile() {
  const file = $("file").files[0];
  if (!file) {
    setStatus("choose a file first", true);
    return;
  }
  const ext = (file.name.split(".").pop() || "wav").toLowerCase();
  const data = await file.arrayBuffer();
  const { ws, opened } = openStream("file " + file.name, startMessage({ wav_format: ext, wav_name: file.name }));
  await opened;
  const piece = 256 * 1024;
  for (let pos = 0; pos < data.byteLength; pos += piece) ws.send(data.slice(pos, pos + piece));
  ws.send(JSON.stringify({ is_speaking: false }));
  setStatus("uploaded " + data.byteLength + " bytes; recognising ...");
}

$("start").onclick = startMic;
$("stop").onclick = stopMic;
$("upload").onclick = uploadFile;

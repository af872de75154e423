// Interview Recorder: the page. Plain JS over the app's commands (window.__TAURI__.core.invoke)
// and one event channel opened at load (`subscribe`). No framework, no build step, no network.
"use strict";

const tauri = window.__TAURI__ && window.__TAURI__.core;

const $ = (id) => document.getElementById(id);

/** Everything the page knows; the DOM is drawn from it. */
const ui = {
  settings: null,
  gateway: null,
  /** idle | recording | stopping | finalizing */
  phase: "idle",
  recording: null,
  startedAtMs: 0,
  endedAtMs: 0,
  /** The mic stream's uplink counters (the big counters) and connection (the chip). */
  counters: null,
  connection: null,
  /** The meeting audio (`system` stream): counters, connection, and the recording's
   *  `meeting_audio` ({state: recording|off|unavailable, ...}); error: why it stopped. */
  systemCounters: null,
  systemConnection: null,
  meetingAudio: null,
  systemError: null,
  /** RECORDER_SYSTEM, when set, and whether this OS can record meeting audio. */
  systemOverride: null,
  systemSupported: true,
  /** Highest number of frames held while the gateway was unreachable. */
  heldMax: 0,
  holdingNow: false,
  /** cluster_id → {name, decision, score, lastHeard, color, stream} */
  speakers: new Map(),
  /** [{from, to, cluster, stream}] in seconds since the start */
  timeline: [],
  resolveUnavailable: null,
  /** Whether this session has audio the gateway stored (Finalize is then useful). */
  recorded: false,
  resolveEvery: 5,
  /** The session in Setup as the app knows it (`session_view`): recorded seconds,
   *  finalized_at, held seconds, the gateway's speakers state. */
  session: null,
  /** Seconds the session had before the running (or last) run: the clock adds the run's time. */
  runBase: 0,
  /** The clock while this page has not run the session (after load, or a change of session). */
  sessionSeconds: 0,
  /** The session whose speakers, timeline and counters the panels show. */
  panelSession: null,
  /** The session this page finalized: the next Start begins a new session without asking. */
  finalizedHere: null,
  /** A finalized session the interviewer chose to record into anyway (asked once). */
  confirmedFinalized: null,
  /** Sessions with audio held on this computer: [{session_id, held, delivery: {state, ...}}]. */
  held: [],
};

/** A decision in words, with what it means (the badge's tooltip adds the score). */
const DECISIONS = {
  auto: ["Recognized", "The voice matched this person closely enough to name them."],
  confirm: ["Please confirm", "The voice may be this person: confirm, or type the right name."],
  manual: ["Named by you", "You gave this voice its name."],
  unknown: ["Not named yet", "No one on the roster matched this voice yet: type a name."],
};

const COLORS = ["#2f7ddf", "#e0852c", "#2f9e5b", "#b255c9", "#d8455a", "#1aa2a8", "#8c6d3f", "#6b6fd6"];

// ---------- formatting ----------

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function ms(v) {
  return v == null ? "—" : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

function seconds(n) {
  return `${n} second${n === 1 ? "" : "s"}`;
}

/** The session's recorded seconds (the clock, the timeline's scale): every earlier run plus
 *  the running one, so a Resume goes on from where the Pause left it. */
function elapsedNow() {
  if (!ui.startedAtMs) return ui.sessionSeconds;
  const end = ui.phase === "recording" ? Date.now() : (ui.endedAtMs || Date.now());
  return ui.runBase + Math.max(0, end - ui.startedAtMs) / 1000;
}

/** Whether the session in Setup was finalized (by this page, the gateway or the held list). */
function sessionFinalized() {
  const id = ui.settings ? ui.settings.session_id : null;
  return !!(ui.session && ui.session.session_id === id && ui.session.finalized_at);
}

// ---------- calling Rust ----------

async function call(command, args) {
  try {
    return await tauri.invoke(command, args || {});
  } catch (e) {
    const message = typeof e === "string" ? e : (e && e.message) || String(e);
    showError(message);
    throw new Error(message);
  }
}

function showError(message) {
  $("banner-error-text").textContent = message;
  $("banner-error").hidden = false;
}

/** Says a change of state to screen readers, through the page's one polite live region.
 *  Callers announce transitions (connected → unreachable, recording → paused), never a text
 *  that changes by itself (counters, attempts, seconds held); a repeat of the last message is
 *  dropped. */
let lastAnnounced = "";
function announce(text) {
  if (!text || text === lastAnnounced) return;
  lastAnnounced = text;
  $("announcer").textContent = text;
}

// ---------- setup ----------

function parseRoster(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const angle = line.match(/^(.*?)\s*<([^>]*)>\s*$/);
    if (angle) return { name: angle[1].trim(), email: angle[2].trim() || undefined };
    const comma = line.match(/^(.*?),\s*(\S+@\S+)$/);
    if (comma) return { name: comma[1].trim(), email: comma[2].trim() };
    return { name: line };
  }).filter((entry) => entry.name);
}

function rosterText(roster) {
  return (roster || []).map((r) => (r.email ? `${r.name} <${r.email}>` : r.name)).join("\n");
}

/** Sets a field from saved settings, unless the user is typing in it right now (a save
 *  triggered by leaving another field must not wipe what is being typed here). */
function fill(id, value) {
  const field = $(id);
  if (document.activeElement !== field) field.value = value;
}

function fillSettings(settings) {
  ui.settings = settings;
  ui.resolveEvery = settings.resolve_every_secs || 5;
  $("mode-bundled").checked = settings.gateway.mode === "bundled";
  $("mode-remote").checked = settings.gateway.mode === "remote";
  fill("remote-url", settings.gateway.remote_url || "");
  fill("remote-key", settings.gateway.remote_api_key || "");
  fill("inference-url", settings.inference.base_url || "");
  fill("inference-key", settings.inference.api_key || "");
  fill("session-id", settings.session_id);
  fill("roster", rosterText(settings.roster));
  $("record-system").checked = !!settings.record_system;
  fill("hotkey", settings.hotkey || "");
  drawHotkey(settings.hotkey || "");
  selectInput(settings.input);
  showModeFields();
  drawRosterNames(settings.roster);
  drawSystemState();
}

function readSettings() {
  const base = ui.settings || {};
  return {
    ...base,
    input: $("input-select").value || base.input || "default",
    record_system: $("record-system").checked,
    gateway: {
      mode: $("mode-remote").checked ? "remote" : "bundled",
      remote_url: $("remote-url").value.trim(),
      remote_api_key: $("remote-key").value.trim(),
    },
    inference: {
      ...(base.inference || {}),
      base_url: $("inference-url").value.trim(),
      api_key: $("inference-key").value.trim(),
    },
    session_id: $("session-id").value.trim(),
    roster: parseRoster($("roster").value),
    hotkey: $("hotkey").value.trim(),
  };
}

/** The keys hint's global part: the saved hotkey, key by key, or that there is none. */
function drawHotkey(hotkey) {
  const keys = $("hotkey-keys");
  if (!hotkey) {
    keys.textContent = "no global hotkey (off)";
    return;
  }
  const parts = [];
  hotkey.split("+").forEach((key, i) => {
    if (i > 0) parts.push("+");
    const kbd = document.createElement("kbd");
    kbd.textContent = key.trim();
    parts.push(kbd);
  });
  keys.replaceChildren(...parts, " start or pause");
}

function showModeFields() {
  const remote = $("mode-remote").checked;
  $("remote-fields").hidden = !remote;
  $("bundled-fields").hidden = remote;
  const url = remote ? $("remote-url").value.trim() : $("inference-url").value.trim();
  $("connection-summary").textContent = remote
    ? `· remote gateway${url ? ` ${url}` : ""}`
    : `· bundled gateway${url ? ", inference service set" : ""}`;
}

/** The roster's names, offered by every speaker row's name field. */
function drawRosterNames(roster) {
  const names = [...new Set((roster || []).map((r) => r.name).filter(Boolean))];
  $("roster-names").replaceChildren(...names.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    return option;
  }));
}

let saving = Promise.resolve();

function saveSettings() {
  saving = saving.then(async () => {
    $("save-state").textContent = "Saving…";
    try {
      const status = await call("save_settings", { settings: readSettings() });
      applyStatus(status);
      $("save-state").textContent = "Saved.";
      setTimeout(() => { if ($("save-state").textContent === "Saved.") $("save-state").textContent = ""; }, 2500);
      return true;
    } catch (e) {
      $("save-state").textContent = "Not saved.";
      // A refused hotkey goes back to the one in use (the banner says why), so the next save
      // of another field does not try it again.
      if (document.activeElement !== $("hotkey")) $("hotkey").value = (ui.settings && ui.settings.hotkey) || "";
      return false;
    }
  });
  return saving;
}

let inputChoices = [];

function selectInput(spec) {
  const select = $("input-select");
  if (spec && !inputChoices.some((c) => c.spec === spec)) {
    inputChoices.push({ spec, label: spec, detail: "" });
    drawInputs();
  }
  select.value = spec;
  const choice = inputChoices.find((c) => c.spec === spec);
  $("input-detail").textContent = choice ? choice.detail : "";
}

function drawInputs() {
  const select = $("input-select");
  const current = select.value || (ui.settings && ui.settings.input);
  select.replaceChildren(...inputChoices.map((c) => {
    const option = document.createElement("option");
    option.value = c.spec;
    option.textContent = c.label;
    return option;
  }));
  if (current) select.value = current;
}

async function refreshDevices() {
  $("refresh-devices").disabled = true;
  try {
    inputChoices = await call("list_devices");
  } catch (e) {
    inputChoices = [{ spec: "default", label: "System default input", detail: "" }];
  } finally {
    $("refresh-devices").disabled = false;
  }
  drawInputs();
  if (ui.settings) selectInput(ui.settings.input);
}

// ---------- status ----------

function applyStatus(status) {
  ui.systemOverride = status.system_override || null;
  ui.systemSupported = status.system_audio_supported !== false;
  fillSettings(status.settings);
  applyGateway(status.gateway);
  if (status.warning) {
    $("banner-warning").textContent = status.warning;
    $("banner-warning").hidden = false;
  } else {
    $("banner-warning").hidden = true;
  }
  $("paths").textContent = `Settings: ${status.config_dir} · Data: ${status.data_dir}`;
  ui.held = status.held || [];
  drawHeld();
  if (status.recording) {
    startedRecording(status.recording);
  } else if (status.last_summary && status.last_summary.session_id === status.settings.session_id) {
    ui.recorded = ui.recorded || status.last_summary.uplink.stored > 0 || status.last_summary.last_seq > 0;
  }
  drawPhase();
}

function applyGateway(gateway) {
  ui.gateway = gateway;
  const chip = $("chip-gateway");
  const detail = $("bundled-detail");
  if (gateway.mode === "bundled") {
    if (gateway.running) {
      chip.textContent = `Bundled gateway · ${gateway.url.replace("http://", "")}`;
      chip.className = "chip ok";
      detail.textContent = `Running inside this app at ${gateway.url}. Data: ${gateway.data_dir}`;
    } else {
      chip.textContent = "Bundled gateway stopped";
      chip.className = "chip error";
      detail.textContent = gateway.error || "Not running.";
      if (gateway.error) showError(gateway.error);
    }
  } else {
    chip.textContent = gateway.running ? `Remote gateway · ${gateway.url}` : "Remote gateway unreachable";
    chip.className = gateway.running ? "chip ok" : "chip warn";
    if (!gateway.running && gateway.error) {
      $("banner-warning").textContent = `${gateway.error}. Recording still works: audio is held on this computer until the gateway answers.`;
      $("banner-warning").hidden = false;
    }
  }
  drawInference();
}

function drawInference() {
  const chip = $("chip-inference");
  const gw = ui.gateway || {};
  const notConfigured = ui.resolveUnavailable || gw.inference_configured === false;
  if (notConfigured) {
    chip.textContent = "Speaker names: inference not configured";
    chip.className = "chip warn";
    $("resolve-state").textContent = gw.mode === "bundled"
      ? "Inference not configured: add the inference service URL in Setup to name speakers."
      : `Inference not configured on the gateway${ui.resolveUnavailable ? `: ${ui.resolveUnavailable}` : "."}`;
  } else if (gw.inference_configured) {
    chip.textContent = "Speaker names: on";
    chip.className = "chip ok";
    $("resolve-state").textContent = `Resolved every ${ui.resolveEvery} s while recording.`;
  } else {
    chip.textContent = "Speaker names: unknown";
    chip.className = "chip";
    $("resolve-state").textContent = "";
  }
}

// ---------- recording ----------

function startedRecording(info) {
  ui.recording = info;
  ui.meetingAudio = info.meeting_audio || null;
  drawSystemState();
  ui.phase = "recording";
  ui.startedAtMs = info.started_at_ms;
  ui.endedAtMs = 0;
  // Frames are one second each: the seconds recorded before this run.
  ui.runBase = Math.max(0, (info.first_seq || 1) - 1);
  ui.panelSession = info.session_id;
  if (info.first_seq > 1) ui.recorded = true;
  drawPhase();
}

/** A new run: its counters, connection, meters and banners start afresh (the speakers and the
 *  timeline stay; they are the session's). */
function resetRun() {
  ui.counters = null;
  ui.connection = null;
  ui.systemCounters = null;
  ui.systemConnection = null;
  ui.meetingAudio = null;
  ui.systemError = null;
  resetMeter("mic");
  resetMeter("system");
  ui.heldMax = 0;
  ui.holdingNow = false;
  ui.resolveUnavailable = null;
  delete $("finalize-status").dataset.outcome;
  $("banner-held").hidden = true;
  $("banner-drained").hidden = true;
  drawCounters();
  drawInference();
  drawSystemState();
}

/** Another session in the panels: nothing of the previous one stays (speakers, timeline,
 *  counters, clock, result). */
function resetSession(sessionId) {
  resetRun();
  ui.speakers.clear();
  ui.timeline = [];
  $("speakers-body").replaceChildren();
  drawSpeakers();
  ui.recorded = false;
  ui.startedAtMs = 0;
  ui.endedAtMs = 0;
  ui.runBase = 0;
  ui.sessionSeconds = 0;
  ui.panelSession = sessionId;
  ui.confirmedFinalized = null;
  ui.session = { session_id: sessionId, recorded: 0, finalized_at: null, held: 0, state: null };
  $("finalize-result").hidden = true;
  drawPhase();
}

/** "New": a fresh session id, clean panels. */
async function newSession() {
  applyStatus(await call("new_session_id"));
  resetSession(ui.settings.session_id);
}

/** Asks the app what the session in Setup already holds (recorded time, finalized, the
 *  gateway's speakers) and shows it; `null` if it cannot say. Never blocks recording. */
async function lookUpSession() {
  try {
    return await tauri.invoke("session_view");
  } catch (e) {
    return null;
  }
}

async function refreshSession() {
  const view = await lookUpSession();
  if (!view || !ui.settings || view.session_id !== ui.settings.session_id || ui.phase !== "idle") return;
  ui.session = view;
  if (!ui.startedAtMs) ui.sessionSeconds = view.recorded;
  if (view.recorded > 0) ui.recorded = true;
  // A session recorded before this page opened: its speakers as the gateway has them.
  if (view.state && ui.panelSession === view.session_id && ui.speakers.size === 0) {
    applyState(view.state);
    if (Array.isArray(view.state.timeline)) {
      ui.timeline = view.state.timeline.map((t) => ({ from: t.start_ms / 1000, to: t.end_ms / 1000, cluster: t.cluster_id, stream: t.stream || "mic" }));
    }
    drawSpeakers();
  }
  drawPhase();
}

/** Before Start: which session to record into. A session this page finalized gives way to a
 *  new one; recording into any other finalized session asks first.
 *  Returns "continue", "new" or "cancel". */
async function chooseSession() {
  const id = ui.settings.session_id;
  const view = await lookUpSession();
  if (!view || view.session_id !== id) return "continue";
  ui.session = view;
  if (!view.finalized_at || ui.confirmedFinalized === id) return "continue";
  if (ui.finalizedHere === id) return "new";
  const answer = await askFinalized(view);
  if (answer === "continue") ui.confirmedFinalized = id;
  return answer;
}

/** The in-page question about a finalized session; resolves with the button pressed. */
function askFinalized(view) {
  const when = new Date(view.finalized_at);
  const at = Number.isNaN(when.getTime()) ? view.finalized_at : when.toLocaleString();
  $("finalized-text").textContent =
    `Session “${view.session_id}” was finalized on ${at}, with ${clock(view.recorded)} recorded. ` +
    "Recording into it adds to that session, and its result is written again when you finalize it. " +
    "Start a new session instead?";
  const dialog = $("finalized-dialog");
  dialog.hidden = false;
  $("finalized-new").focus();
  return new Promise((resolve) => {
    const answer = (choice) => () => {
      dialog.hidden = true;
      for (const id of ["finalized-new", "finalized-continue", "finalized-cancel"]) $(id).onclick = null;
      resolve(choice);
    };
    $("finalized-new").onclick = answer("new");
    $("finalized-continue").onclick = answer("continue");
    $("finalized-cancel").onclick = answer("cancel");
  });
}

async function toggleRecording() {
  if (ui.phase === "recording") {
    ui.phase = "stopping";
    // The clock stops with the click, not when the last seconds are delivered.
    if (!ui.endedAtMs) ui.endedAtMs = Date.now();
    drawPhase();
    try {
      const summary = await call("stop_recording");
      finished(summary);
    } catch (e) {
      ui.phase = "idle";
    }
    drawPhase();
  } else if (ui.phase === "idle") {
    $("record-button").disabled = true;
    try {
      if (!(await saveSettings())) {
        ui.phase = "idle";
        return;
      }
      const choice = await chooseSession();
      if (choice === "cancel") return;
      if (choice === "new") await newSession();
      if (ui.panelSession === ui.settings.session_id) {
        resetRun();
      } else {
        resetSession(ui.settings.session_id);
      }
      $("finalize-result").hidden = true;
      // The recording takes the input over from the test (the app ends the test first).
      setMicTest(false);
      const info = await call("start_recording");
      startedRecording(info);
    } catch (e) {
      ui.phase = "idle";
    } finally {
      drawPhase();
    }
  }
}

function finished(summary) {
  if (ui.phase === "recording" || ui.phase === "stopping") ui.phase = "idle";
  if (!ui.endedAtMs) ui.endedAtMs = Date.now();
  ui.counters = summary.uplink;
  if (summary.system) {
    ui.systemCounters = summary.system.uplink;
    if (summary.system.error) ui.systemError = `Meeting audio stopped early: ${summary.system.error}`;
  }
  if (summary.uplink.stored > 0 || summary.last_seq > 0) ui.recorded = true;
  drawCounters();
  if (summary.drained) {
    ui.connection = null;
    ui.systemConnection = null;
    $("chip-connection").textContent = "Not recording";
    $("chip-connection").className = "chip";
  }
  // Both streams' seconds: the mic's and the meeting audio's.
  const pending = summary.uplink.pending + (summary.system ? summary.system.uplink.pending : 0);
  if (!summary.drained && pending > 0) {
    showHeld(`${seconds(pending)} of audio did not reach the gateway yet. ` +
      "They are safe on this computer and are being sent in the background (see Held audio).");
  }
  drawSystemState();
  drawPhase();
}

/** The meeting audio's line, its warning and whether its meter is dimmed. */
function drawSystemState() {
  const settingOn = ui.settings ? !!ui.settings.record_system : false;
  const toggle = $("record-system");
  toggle.disabled = !ui.systemSupported;
  $("record-system-detail").textContent = !ui.systemSupported
    ? "This system cannot record what the computer plays."
    : ui.systemOverride
      ? `Source: ${ui.systemOverride} (set by RECORDER_SYSTEM).`
      : "What the computer plays (the other side of the call), from the default output.";
  const m = ui.meetingAudio;
  let text;
  let warning = ui.systemError;
  let off = false;
  if (m && m.state === "recording") {
    const c = ui.systemConnection;
    const conn = c ? { connecting: "connecting…", connected: "connected", reconnecting: "reconnecting", offline: "offline" }[c.state.state] : null;
    text = ui.phase === "recording" ? `· recording${conn ? `, ${conn}` : ""}` : "· recorded";
  } else if (m && m.state === "unavailable") {
    text = "· not recorded";
    off = true;
    warning = `Meeting audio is not being recorded: ${m.reason}. The microphone records as usual.`;
  } else if (m && m.state === "off") {
    text = "· off (turned off in Setup)";
    off = true;
  } else {
    text = settingOn ? "· recorded when you press Start" : "· off: only the microphone is recorded";
    off = !settingOn;
  }
  if ($("system-state").textContent !== text) $("system-state").textContent = text;
  $("system-block").classList.toggle("off", off);
  const banner = $("system-warning");
  if (warning) {
    if (banner.textContent !== warning) banner.textContent = warning;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

function drawPhase() {
  const button = $("record-button");
  const label = $("record-label");
  const state = $("record-state");
  const recording = ui.phase === "recording";
  button.classList.toggle("recording", recording);
  button.disabled = ui.phase === "stopping" || ui.phase === "finalizing";
  // Within a session Stop and Start pause and resume it; Finalize ends it.
  const sessionId = ui.settings ? ui.settings.session_id : "";
  const finalized = sessionFinalized();
  const paused = !finalized && elapsedNow() > 0;
  label.textContent = recording ? "Pause" : ui.phase === "stopping" ? "Pausing…" : paused ? "Resume" : "Start";
  state.textContent = {
    idle: finalized ? `Finalized · session ${sessionId}` : paused ? `Paused · session ${sessionId}` : "Ready",
    recording: `Recording · session ${ui.recording ? ui.recording.session_id : ""}`,
    stopping: "Pausing: delivering the last seconds…",
    finalizing: "Finalizing…",
  }[ui.phase];
  $("setup-fields").disabled = ui.phase !== "idle";
  $("mic-test").disabled = ui.phase !== "idle";
  $("finalize-button").disabled = !(ui.recorded && (ui.phase === "idle" || ui.phase === "recording"));
  if (ui.phase === "idle" || ui.phase === "recording") {
    const status = $("finalize-status");
    if (!status.dataset.outcome) {
      status.textContent = ui.recorded
        ? "Finalize stops the recording if it runs, waits until every second reached the gateway, and writes the session's result.json."
        : "Record something first. Finalize stops the recording, waits until every second reached the gateway, and writes the session's result.";
    }
  }
  if (ui.phase === "idle" && !ui.counters) $("chip-connection").textContent = "Not recording";
  drawElapsed();
  // Said once per change: recording, paused, finalized (not on the first draw after load).
  const spoken = recording ? "Recording." : ui.phase === "idle" ? (finalized ? "Session finalized." : paused ? "Paused." : "Ready.") : "";
  if (spoken && spoken !== ui.lastPhaseSpoken) {
    if (ui.lastPhaseSpoken !== undefined) announce(spoken);
    ui.lastPhaseSpoken = spoken;
  }
}

function drawElapsed() {
  const text = clock(elapsedNow());
  if ($("elapsed").textContent !== text) $("elapsed").textContent = text;
}

// Level events come about 20 times a second; the meter is painted at most every
// METER_INTERVAL_MS, on an animation frame, touching only what changed: a repaint of the web
// view (software-rendered on many Linux desktops) costs far more than the event itself.
const METER_INTERVAL_MS = 90;
/** One meter per stream; the mic's keeps the ids it always had. */
const METERS = {
  mic: { meter: "meter", cover: "meter-cover", peak: "meter-peak", text: "level-text" },
  system: { meter: "system-meter", cover: "system-meter-cover", peak: "system-meter-peak", text: "system-level-text" },
};
/** stream → the latest {rms, peak} not painted yet. */
let pendingLevels = {};
let levelPaintScheduled = false;
let lastLevelPaint = 0;
const lastLevelText = {};

function drawLevel(stream, rms, peak) {
  if (!METERS[stream]) return;
  pendingLevels[stream] = { rms, peak };
  if (levelPaintScheduled) return;
  levelPaintScheduled = true;
  const wait = Math.max(0, lastLevelPaint + METER_INTERVAL_MS - performance.now());
  setTimeout(() => requestAnimationFrame(paintLevel), wait);
}

function paintLevel() {
  levelPaintScheduled = false;
  lastLevelPaint = performance.now();
  flushDraws();
  const levels = pendingLevels;
  pendingLevels = {};
  const pct = (db) => Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  for (const [stream, { rms, peak }] of Object.entries(levels)) {
    const ids = METERS[stream];
    $(ids.cover).style.width = `${(100 - pct(rms)).toFixed(1)}%`;
    $(ids.peak).style.left = `calc(${pct(peak).toFixed(1)}% - 3px)`;
    const text = rms <= -100 ? "silence" : `${rms.toFixed(0)} dBFS`;
    if (text !== lastLevelText[stream]) {
      lastLevelText[stream] = text;
      $(ids.text).textContent = text;
      $(ids.meter).setAttribute("aria-valuenow", String(Math.max(-60, Math.round(rms))));
      $(ids.meter).setAttribute("aria-valuetext", text);
    }
  }
}

function resetMeter(stream) {
  const ids = METERS[stream];
  delete pendingLevels[stream];
  lastLevelText[stream] = "";
  $(ids.cover).style.width = "100%";
  $(ids.peak).style.left = "0";
  $(ids.text).textContent = "— dBFS";
  // A meter always has a value: the floor of its scale, said as "no signal".
  $(ids.meter).setAttribute("aria-valuenow", "-60");
  $(ids.meter).setAttribute("aria-valuetext", "no signal");
}

function drawCounters() {
  const c = ui.counters || {};
  const set = (id, value) => { if ($(id).textContent !== value) $(id).textContent = value; };
  set("count-sent", String(c.sent || 0));
  set("count-acked", String(c.acked || 0));
  set("count-pending", String(c.pending || 0));
  set("count-missing", String(c.gateway_missing || 0));
  set("count-duplicate", String(c.duplicate || 0));
  set("count-bytes", bytes(c.bytes_acked || 0));
  const latency = c.latency || {};
  set("count-latency", ms(latency.last_ms));
  set("count-latency-sub", latency.avg_ms == null ? "" :
    `avg ${ms(latency.avg_ms)} · p99 ${ms(latency.p99_ms)} · min ${ms(latency.min_ms)}`);
  $("count-missing").parentElement.classList.toggle("alert", (c.gateway_missing || 0) > 0);
  $("count-pending").parentElement.classList.toggle("attention", (c.pending || 0) > 3);
  const sys = ui.systemCounters || {};
  set("system-count-sent", String(sys.sent || 0));
  set("system-count-acked", String(sys.acked || 0));
  set("system-count-pending", String(sys.pending || 0));
  set("system-count-missing", String(sys.gateway_missing || 0));
}

function drawConnection() {
  const chip = $("chip-connection");
  const c = ui.connection;
  if (!c) return;
  const state = c.state.state;
  const text = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  }[state] || state;
  if (chip.textContent !== text) chip.textContent = text;
  // The attempt number is a detail for whoever hovers, not a change to announce.
  chip.title = state === "reconnecting" ? `Attempt ${c.state.attempt}` : "";
  chip.className = state === "connected" ? "chip ok" : state === "connecting" ? "chip" : "chip warn";
  const down = state === "reconnecting" || state === "offline";
  if (down && ui.lastLink !== "down") {
    announce("Gateway unreachable. Recording goes on; audio is held on this computer.");
  } else if (state === "connected" && ui.lastLink === "down") {
    announce("Gateway reachable again.");
  }
  if (down || state === "connected") ui.lastLink = down ? "down" : "up";
}

function showHeld(text) {
  $("banner-held").textContent = text;
  $("banner-held").hidden = false;
  $("banner-drained").hidden = true;
}

/** Banner logic: held while the gateway is unreachable, "delivered" once the backlog drains. */
function updateHeldBanner() {
  const c = ui.connection;
  const pending = ui.counters ? ui.counters.pending : 0;
  const down = c && (c.state.state === "reconnecting" || c.state.state === "offline");
  if (down) {
    const holding = Math.max(c.holding || 0, pending);
    ui.heldMax = Math.max(ui.heldMax, holding);
    ui.holdingNow = true;
    const why = c.detail ? ` (${c.detail})` : "";
    showHeld(`Gateway unreachable${why}. ${seconds(holding)} of audio held safely on this computer; ` +
      "they will be sent as soon as it is back.");
  } else if (ui.holdingNow && c && c.state.state === "connected" && pending <= 1) {
    ui.holdingNow = false;
    $("banner-held").hidden = true;
    $("banner-drained").textContent = `Gateway back: all ${seconds(ui.heldMax)} of held audio delivered.`;
    $("banner-drained").hidden = false;
    ui.heldMax = 0;
    setTimeout(() => { $("banner-drained").hidden = true; }, 15000);
  } else if (ui.holdingNow && c && c.state.state === "connected") {
    showHeld(`Gateway back: delivering held audio, ${seconds(pending)} to go…`);
  }
}

// ---------- held audio ----------

/** What a held session's row says. */
function heldWords(h) {
  const d = h.delivery || {};
  const held = seconds(h.held);
  switch (d.state) {
    case "waiting":
      return `${held} of audio held on this computer, not yet on the gateway.`;
    case "sending":
      return d.problem
        ? `Waiting for the gateway (${d.problem}). ${held} held safely here; retrying…`
        : `Sending held audio… ${held} to go.`;
    case "delivered":
      return "All held audio delivered to the gateway.";
    case "finalizing":
      return "All held audio delivered; finalizing…";
    case "finalized":
      return `Delivered and finalized: ${d.result_key}`;
    case "failed":
      return h.held > 0
        ? `Not delivered: ${d.reason}. ${held} still held on this computer.`
        : `${d.reason.charAt(0).toUpperCase()}${d.reason.slice(1)}.`;
    default:
      return `${held} held on this computer.`;
  }
}

function heldRow(sessionId) {
  const li = document.createElement("li");
  li.dataset.session = sessionId;
  li.innerHTML = `
    <span class="held-id"></span>
    <span class="held-text"></span>
    <button type="button" class="send-held">Send held audio</button>
    <button type="button" class="finalize-held"></button>`;
  li.querySelector(".held-id").textContent = sessionId;
  return li;
}

function drawHeld() {
  const list = $("held-list");
  $("held-card").hidden = ui.held.length === 0;
  const rows = ui.held.map((h) => {
    const li = list.querySelector(`li[data-session="${CSS.escape(h.session_id)}"]`) || heldRow(h.session_id);
    const state = (h.delivery || {}).state;
    // The row's text changes as the seconds go; only where a delivery ends is it said.
    if (li.dataset.state !== state && ["delivered", "finalized", "failed"].includes(state)) {
      announce(`Session ${h.session_id}: ${heldWords(h)}`);
    }
    li.dataset.state = state;
    li.dataset.held = String(h.held);
    const text = heldWords(h);
    if (li.querySelector(".held-text").textContent !== text) li.querySelector(".held-text").textContent = text;
    const done = state === "finalizing" || state === "finalized";
    li.querySelector(".send-held").hidden = h.held === 0 || done;
    const finalize = li.querySelector(".finalize-held");
    finalize.hidden = done;
    finalize.textContent = h.held > 0 ? "Send and finalize" : "Finalize";
    // The session in Setup, finalized from here: the next Start begins a new one.
    if (state === "finalized" && ui.settings && h.session_id === ui.settings.session_id) {
      ui.session = { ...(ui.session || {}), session_id: h.session_id, finalized_at: h.delivery.finalized_at, held: 0 };
      ui.finalizedHere = h.session_id;
      if (ui.phase === "idle") drawPhase();
    }
    return li;
  });
  list.replaceChildren(...rows);
}

async function onHeldClick(event) {
  const button = event.target.closest("button");
  const row = button && button.closest("li[data-session]");
  if (!row) return;
  const finalize = button.classList.contains("finalize-held");
  if (!finalize && !button.classList.contains("send-held")) return;
  button.disabled = true;
  try {
    await call("send_held", { sessionId: row.dataset.session, finalize });
  } catch (e) {
    // shown by call()
  } finally {
    button.disabled = false;
  }
}

// ---------- speakers ----------

function speakerFor(clusterId) {
  let s = ui.speakers.get(clusterId);
  if (!s) {
    // Until the state says, the cluster id tells the stream: the built-in engine names the
    // meeting audio's clusters `sys_N`.
    const stream = clusterId.startsWith("sys_") ? "system" : "mic";
    s = { name: null, decision: "unknown", score: null, lastHeard: null, color: COLORS[ui.speakers.size % COLORS.length], stream };
    ui.speakers.set(clusterId, s);
  }
  return s;
}

function onSpeaker(answer) {
  // An answer proves inference works (a remote gateway may not have said so).
  if (ui.gateway) ui.gateway.inference_configured = true;
  ui.resolveUnavailable = null;
  drawInference();
  const now = elapsedNow();
  const s = speakerFor(answer.cluster_id);
  s.name = answer.speaker_name || null;
  s.decision = answer.decision;
  s.score = answer.evidence && typeof answer.evidence.sv_score === "number" ? answer.evidence.sv_score : null;
  s.lastHeard = now;
  applyState(answer.updated_state);
  const turns = answer.updated_state && answer.updated_state.timeline;
  if (Array.isArray(turns)) {
    // The built-in engine attributes every stored second: its turns are the timeline.
    ui.timeline = turns.map((t) => ({ from: t.start_ms / 1000, to: t.end_ms / 1000, cluster: t.cluster_id, stream: t.stream || "mic" }));
  } else {
    ui.timeline.push({ from: Math.max(0, now - ui.resolveEvery), to: now, cluster: answer.cluster_id, stream: s.stream });
  }
  drawSpeakers();
}

/** Names the interviewer bound win over the inference's suggestion. */
function applyState(state) {
  if (!state) return;
  for (const cluster of state.clusters || []) {
    const s = speakerFor(cluster.cluster_id);
    if (cluster.stream === "mic" || cluster.stream === "system") s.stream = cluster.stream;
    if (cluster.bound_name) { s.name = cluster.bound_name; }
  }
  for (const [clusterId, name] of Object.entries(state.bindings || {})) {
    if (typeof name === "string" && ui.speakers.has(clusterId)) ui.speakers.get(clusterId).name = name;
  }
}

function drawSpeakers() {
  const body = $("speakers-body");
  $("speakers-empty").hidden = ui.speakers.size > 0;
  for (const [clusterId, s] of ui.speakers) {
    let row = body.querySelector(`tr[data-cluster="${CSS.escape(clusterId)}"]`);
    if (!row) {
      row = speakerRow(clusterId, s);
      body.appendChild(row);
    }
    const role = row.querySelector(".role");
    role.textContent = roleOf(s);
    role.className = `role ${roleOf(s)}`;
    const name = row.querySelector(".speaker-name");
    // Unnamed, the microphone's voices are the interviewer's side.
    name.textContent = s.name || (s.stream === "system" ? "unknown" : "interviewer");
    name.classList.toggle("unknown", !s.name);
    const badge = row.querySelector(".badge");
    const [words, meaning] = DECISIONS[s.decision] || [s.decision, ""];
    badge.textContent = words;
    badge.dataset.decision = s.decision;
    badge.className = `badge ${s.decision}`;
    badge.title = `${meaning}${s.score == null ? "" : ` Match score ${s.score.toFixed(2)}.`} (${s.decision}, voice ${clusterId})`;
    row.querySelector(".heard").textContent = s.lastHeard == null ? "—" : clock(s.lastHeard);
    const input = row.querySelector("input");
    if (document.activeElement !== input && !input.dataset.touched) input.value = s.name || "";
    const confirm = row.querySelector("button.confirm");
    confirm.hidden = !(s.decision === "confirm" && s.name);
  }
  drawTimeline();
}

/** The side of the call a cluster was heard on: the mic is the interviewer's, the meeting
 *  audio the remote side's. */
function roleOf(s) {
  return s.stream === "system" ? "remote" : "interviewer";
}

function speakerRow(clusterId, s) {
  const row = document.createElement("tr");
  row.dataset.cluster = clusterId;
  row.innerHTML = `
    <td><span class="swatch" aria-hidden="true"></span><span class="voice-label"></span><span class="role"></span></td>
    <td><span class="speaker-name"></span></td>
    <td><span class="badge"></span></td>
    <td class="num heard"></td>
    <td><form class="name-form">
      <input type="text" class="name-input" placeholder="Name" list="roster-names">
      <button type="submit" class="rename">Save</button>
      <button type="button" class="confirm" hidden>Confirm</button>
    </form></td>`;
  row.querySelector(".swatch").style.background = s.color;
  // "Voice 2", in the order the voices were first heard; the engine's id is in the tooltip.
  const voice = `Voice ${ui.speakers.size}`;
  const label = row.querySelector(".voice-label");
  label.textContent = voice;
  label.title = `Cluster ${clusterId}`;
  row.querySelector(".name-input").setAttribute("aria-label", `Name of ${voice}`);
  row.querySelector("button.rename").setAttribute("aria-label", `Save the name of ${voice}`);
  row.querySelector("button.confirm").setAttribute("aria-label", `Confirm the name of ${voice}`);
  const form = row.querySelector("form");
  const input = row.querySelector("input");
  input.addEventListener("input", () => { input.dataset.touched = "1"; });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    rename(clusterId, input.value);
  });
  row.querySelector("button.confirm").addEventListener("click", () => {
    const current = ui.speakers.get(clusterId);
    if (current && current.name) rename(clusterId, current.name);
  });
  return row;
}

async function rename(clusterId, name) {
  name = (name || "").trim();
  if (!name) { showError("Type a name first."); return; }
  const row = $("speakers-body").querySelector(`tr[data-cluster="${CSS.escape(clusterId)}"]`);
  const buttons = row ? row.querySelectorAll("button") : [];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const answer = await call("rename_speaker", { clusterId, name });
    const s = speakerFor(clusterId);
    s.name = name;
    s.decision = "manual";
    applyState(answer.state);
    if (row) delete row.querySelector("input").dataset.touched;
    drawSpeakers();
  } catch (e) {
    // shown by call()
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function drawTimeline() {
  const total = Math.max(elapsedNow(), 1);
  const timeline = $("timeline");
  timeline.classList.toggle("split", ui.timeline.some((seg) => seg.stream === "system"));
  timeline.replaceChildren(...ui.timeline.map((seg) => {
    const div = document.createElement("div");
    div.className = seg.stream === "system" ? "seg remote" : "seg";
    div.style.left = `${(seg.from / total) * 100}%`;
    div.style.width = `${Math.max(0.5, ((seg.to - seg.from) / total) * 100)}%`;
    const s = ui.speakers.get(seg.cluster);
    div.style.background = s ? s.color : "#888";
    const side = seg.stream === "system" ? "remote" : "interviewer";
    div.title = `${s && s.name ? s.name : seg.cluster} (${side}) · ${clock(seg.from)}–${clock(seg.to)}`;
    return div;
  }));
  $("timeline-end").textContent = clock(total);
  // The picture in words: talk time per voice, in the order they were heard.
  const talk = new Map();
  for (const seg of ui.timeline) talk.set(seg.cluster, (talk.get(seg.cluster) || 0) + (seg.to - seg.from));
  const parts = [...talk].map(([cluster, secs]) => {
    const s = ui.speakers.get(cluster);
    return `${s && s.name ? s.name : "unnamed voice"} ${clock(secs)}`;
  });
  const label = parts.length ? `Who spoke when, over ${clock(total)}: ${parts.join(", ")}` : "Who spoke when: nobody yet";
  if (timeline.getAttribute("aria-label") !== label) timeline.setAttribute("aria-label", label);
}

// ---------- finalize ----------

async function finalize() {
  const wasRecording = ui.phase === "recording";
  // The clock stops with the click: what follows is delivery and writing, not recording.
  if (wasRecording && !ui.endedAtMs) ui.endedAtMs = Date.now();
  ui.phase = "finalizing";
  drawPhase();
  $("finalize-status").textContent = wasRecording
    ? "Stopping and waiting until every second reached the gateway…"
    : "Writing the session's result…";
  $("finalize-result").hidden = true;
  try {
    const result = await call("finalize_session");
    if (result.summary) {
      ui.counters = result.summary.uplink;
      if (result.summary.system) ui.systemCounters = result.summary.system.uplink;
    }
    drawCounters();
    ui.session = { ...(ui.session || {}), session_id: result.session_id, finalized_at: result.finalized_at, held: 0 };
    ui.finalizedHere = result.session_id;
    ui.confirmedFinalized = null;
    $("finalize-status").dataset.outcome = "1";
    $("finalize-status").textContent =
      `Finalized at ${result.finalized_at} with ${result.event_count} speaker event${result.event_count === 1 ? "" : "s"}. ` +
      "Start records a new session.";
    $("result-key").textContent = result.result_key;
    $("result-path").textContent = result.result_path || result.result_location;
    $("open-result").hidden = !result.result_path;
    $("result-wav").textContent = result.local_wav || "none";
    $("result-system-wav").textContent = result.system_wav || "none";
    $("open-recording").hidden = !result.local_wav;
    $("finalize-result").hidden = false;
  } catch (e) {
    $("finalize-status").dataset.outcome = "1";
    $("finalize-status").textContent = `Not finalized: ${e.message}`;
  } finally {
    ui.phase = "idle";
    drawPhase();
  }
}

// ---------- events from Rust ----------

// Counters can change many times a second; draw them with the next meter paint instead of
// once per event, so the web view paints at most about ten times a second while recording.
const drawQueue = new Set();

function drawSoon(draw) {
  drawQueue.add(draw);
  if (!levelPaintScheduled && drawQueue.size === 1) {
    const wait = Math.max(0, lastLevelPaint + METER_INTERVAL_MS - performance.now());
    setTimeout(() => requestAnimationFrame(flushDraws), wait);
  }
}

function flushDraws() {
  const draws = [...drawQueue];
  drawQueue.clear();
  for (const draw of draws) draw();
}

function onEvent(message) {
  switch (message.type) {
    case "level":
      drawLevel(message.stream || "mic", message.rms_dbfs, message.peak_dbfs);
      break;
    case "uplink":
      if (message.stream === "system") {
        ui.systemCounters = message;
        drawSoon(drawCounters);
        break;
      }
      ui.counters = message;
      if (message.stored > 0 && !ui.recorded) {
        ui.recorded = true;
        drawPhase();
      }
      // The first connection events can go out before the page's stream is attached to the
      // recording; ACKs arriving prove the connection.
      if (!ui.connection && message.acked > 0) {
        ui.connection = { state: { state: "connected" }, holding: 0 };
        drawConnection();
      }
      drawSoon(drawCounters);
      updateHeldBanner();
      break;
    case "connection":
      if (message.stream === "system") {
        ui.systemConnection = message;
        drawSoon(drawSystemState);
        break;
      }
      ui.connection = message;
      drawConnection();
      updateHeldBanner();
      break;
    case "speaker":
      onSpeaker(message);
      break;
    case "resolve_unavailable":
      ui.resolveUnavailable = message.detail;
      drawInference();
      break;
    case "error":
      if (message.stream === "system") {
        // The meeting audio's trouble is said next to its meter; the mic records on.
        ui.systemError = `Meeting audio: ${errorWords(message)}`;
        drawSystemState();
      } else if (message.origin === "resolve") {
        // Resolution retries by itself and never touches the audio: say it where the speakers
        // are, not in the alarm banner (and not at all while the held-frames banner explains).
        if (!ui.holdingNow) $("resolve-state").textContent = `Last speaker resolution failed: ${message.message}`;
      } else {
        showError(errorWords(message));
      }
      break;
    case "finished":
      finished(message);
      break;
    case "recording":
      if (message.state === "recording" && message.info) startedRecording(message.info);
      else if (message.state === "stopping" && ui.phase === "recording") { ui.phase = "stopping"; drawPhase(); }
      break;
    case "gateway":
      applyGateway(message.status);
      break;
    case "held":
      ui.held = message.sessions || [];
      drawHeld();
      break;
    case "mic_test":
      // The test ended by itself (the input went away) or was stopped.
      if (message.problem && micTesting) showError(`Microphone test: ${message.problem}`);
      setMicTest(false);
      break;
    case "command":
      // The tray's Start/Pause and the global hotkey: what the button does.
      if (message.action === "toggle") toggleRecording();
      break;
    case "window":
      // A second launch was turned away and this window brought to the front instead.
      if (message.reason === "second_launch") {
        document.body.dataset.secondLaunches = String(Number(document.body.dataset.secondLaunches || 0) + 1);
        announce("Interview Recorder is already open: here it is.");
      }
      break;
    default:
      break;
  }
}

function errorWords(message) {
  const where = {
    source: "Input",
    local_copy: "Local copy",
    spool: "Spool",
    uplink: "Connection",
    gateway: "Gateway",
    resolve: "Speaker resolution",
  }[message.origin] || "Error";
  return `${where}: ${message.message}`;
}

// ---------- microphone test ----------

/** Whether "Test microphone" runs: the meter then shows the input's level, nothing recorded. */
let micTesting = false;

function setMicTest(on) {
  if (micTesting === on) return;
  micTesting = on;
  $("mic-test").setAttribute("aria-pressed", String(on));
  if (!on && ui.phase === "idle") resetMeter("mic");
  announce(on ? "Microphone test on: the meter shows the input's level." : "Microphone test off.");
}

async function toggleMicTest() {
  const on = !micTesting;
  try {
    await call("mic_test", { on });
    setMicTest(on);
  } catch (e) {
    setMicTest(false);
  }
}

// ---------- keyboard ----------

/** Ctrl+Shift+R (⌘⇧R): Start or Pause; Ctrl+Shift+F (⌘⇧F): Finalize. Both with Shift so
 *  they never take a key a text field uses. */
function onShortcut(event) {
  if (!(event.ctrlKey || event.metaKey) || !event.shiftKey || event.altKey || event.repeat) return;
  const key = event.key.toLowerCase();
  if (key === "r") {
    event.preventDefault();
    if (!$("record-button").disabled) toggleRecording();
  } else if (key === "f") {
    event.preventDefault();
    if (!$("finalize-button").disabled) finalize();
  }
}

// ---------- start ----------

async function main() {
  if (!tauri) {
    showError("This page runs inside the Interview Recorder app.");
    return;
  }
  const channel = new tauri.Channel();
  channel.onmessage = onEvent;
  await call("subscribe", { onEvent: channel });

  $("banner-error-dismiss").addEventListener("click", () => { $("banner-error").hidden = true; });
  $("refresh-devices").addEventListener("click", refreshDevices);
  $("record-button").addEventListener("click", toggleRecording);
  $("finalize-button").addEventListener("click", finalize);
  $("open-logs").addEventListener("click", () => call("open_logs").catch(() => {}));
  $("play-recording").addEventListener("click", () => call("play_recording").catch(() => {}));
  document.addEventListener("keydown", onShortcut);
  $("new-session").addEventListener("click", () => newSession().catch(() => { /* shown */ }));
  $("held-list").addEventListener("click", onHeldClick);
  for (const radio of document.querySelectorAll('input[name="gateway-mode"]')) {
    radio.addEventListener("change", () => { showModeFields(); saveSettings(); });
  }
  for (const id of ["remote-url", "inference-url"]) {
    $(id).addEventListener("input", showModeFields);
  }
  $("input-select").addEventListener("change", () => {
    selectInput($("input-select").value);
    // A test running goes on with the input just chosen.
    saveSettings().then((saved) => { if (saved && micTesting) call("mic_test", { on: true }).catch(() => setMicTest(false)); });
  });
  $("mic-test").addEventListener("click", toggleMicTest);
  $("record-system").addEventListener("change", saveSettings);
  for (const id of ["remote-url", "remote-key", "inference-url", "inference-key", "roster", "hotkey"]) {
    $(id).addEventListener("change", saveSettings);
  }
  $("session-id").addEventListener("change", () => {
    // Another session: the panels empty, then show what it already holds. A finalized one
    // typed in asks before it is recorded into, whoever finalized it.
    ui.finalizedHere = null;
    saveSettings().then((saved) => {
      if (!saved) return;
      resetSession(ui.settings.session_id);
      refreshSession();
    });
  });
  $("open-result").addEventListener("click", () => call("open_folder", { folder: "result" }).catch(() => {}));
  $("open-recording").addEventListener("click", () => call("open_folder", { folder: "recording" }).catch(() => {}));

  const status = await call("app_status");
  applyStatus(status);
  ui.panelSession = status.settings.session_id;
  // Not waiting for the devices (listing them can take seconds): the session's time and
  // speakers show as soon as the gateway answers.
  refreshSession();
  await refreshDevices();
  // The clock ticks 4 times a second (drawn only when the second changes); the timeline's
  // scale grows once a second.
  let ticks = 0;
  setInterval(() => {
    if (ui.phase !== "recording") return;
    drawElapsed();
    if (++ticks % 4 === 0) drawTimeline();
  }, 250);
}

main().catch((e) => showError(`The window could not start: ${e.message || e}`));

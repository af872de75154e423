// Interview Recorder: the Sessions view. Lists past sessions (the gateway's and this
// computer's), plays them (the app gives an address of its own player server on 127.0.0.1,
// which streams the audio with Range requests, from the local copy or else from the gateway
// as the player reads, so playback starts at once and seeks without loading it all; the page
// never talks to the gateway or holds its key), renames them (a title kept by the
// app), exports them (into a folder the user chooses once) and deletes them (on this computer
// at once; on the gateway now, or when it is back).
// Loaded after app.js, whose helpers ($, call, clock, bytes, tauri, ui, newSession) it uses.
"use strict";

const sessionsView = {
  /** The list as the app gave it: [{session_id, title, started_at, seconds, ...}]. */
  sessions: [],
  /** The session the player holds. */
  playing: null,
  /** The session whose export the export box shows. */
  exported: null,
  /** Whether a list request is out (a second Refresh waits for it). */
  loading: null,
};

// ---------- views ----------

function showView(name) {
  const sessions = name === "sessions";
  $("view-record").hidden = sessions;
  $("view-sessions").hidden = !sessions;
  $("tab-record").setAttribute("aria-selected", String(!sessions));
  $("tab-sessions").setAttribute("aria-selected", String(sessions));
  if (sessions) loadSessions();
}

// ---------- the list ----------

async function loadSessions() {
  if (sessionsView.loading) return sessionsView.loading;
  $("sessions-status").textContent = "Looking for sessions…";
  sessionsView.loading = call("list_sessions")
    .then((view) => {
      sessionsView.sessions = view.sessions;
      const waiting = view.deleting.length > 0
        ? ` ${view.deleting.length} deleted here wait${view.deleting.length === 1 ? "s" : ""} for the gateway to delete ${view.deleting.length === 1 ? "its copy" : "their copies"}.`
        : "";
      $("sessions-status").textContent = view.gateway_error
        ? `Only sessions on this computer are listed: the gateway could not be asked (${view.gateway_error}).${waiting}`
        : `${view.sessions.length} session${view.sessions.length === 1 ? "" : "s"}.${waiting}`;
      $("export-folder").textContent = view.export_dir;
      drawSessions();
    })
    .catch(() => { $("sessions-status").textContent = "The sessions could not be listed."; })
    .finally(() => { sessionsView.loading = null; });
  return sessionsView.loading;
}

function sessionDate(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? iso : when.toLocaleString();
}

function speakerWords(s) {
  if (s.speakers.length > 0) {
    const unnamed = s.speaker_count - s.speakers.length;
    return s.speakers.join(", ") + (unnamed > 0 ? ` and ${unnamed} unnamed` : "");
  }
  if (s.speaker_count > 0) return `${s.speaker_count} unnamed`;
  return "—";
}

function statusWords(s) {
  const parts = [];
  if (s.held > 0) parts.push(`${seconds(s.held)} held on this computer`);
  if (!s.on_gateway) parts.push("only on this computer");
  return parts.join(" · ");
}

function sessionRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.session = s.session_id;
  tr.dataset.finalized = s.finalized_at ? "true" : "false";
  tr.dataset.seconds = String(s.seconds);
  tr.innerHTML = `
    <td class="title-cell">
      <span class="session-name"><span class="session-title"></span><span class="session-id"></span></span>
      <form class="rename-form" hidden>
        <input type="text" class="rename-input" maxlength="200" spellcheck="false">
        <button type="submit">Save</button>
        <button type="button" class="rename-cancel secondary">Cancel</button>
      </form>
    </td>
    <td class="session-date"></td>
    <td class="session-length num"></td>
    <td class="session-speakers"></td>
    <td><span class="session-status"></span><span class="session-extra hint"></span></td>
    <td><div class="session-actions">
      <button type="button" class="play">Play</button>
      <button type="button" class="rename">Rename</button>
      <button type="button" class="export">Export</button>
      <button type="button" class="delete">Delete</button>
    </div></td>`;
  const name = s.title || s.session_id;
  tr.querySelector(".session-title").textContent = name;
  const id = tr.querySelector(".session-id");
  id.textContent = s.session_id;
  id.hidden = !s.title;
  tr.querySelector(".rename-input").setAttribute("aria-label", `Title for session ${s.session_id}`);
  tr.querySelector(".session-date").textContent = sessionDate(s.started_at);
  tr.querySelector(".session-length").textContent = clock(s.seconds);
  tr.querySelector(".session-speakers").textContent = speakerWords(s);
  const status = tr.querySelector(".session-status");
  status.textContent = s.finalized_at ? "Finalized" : "Not finalized";
  status.className = `session-status ${s.finalized_at ? "status-finalized" : "status-open"}`;
  const extra = statusWords(s);
  tr.querySelector(".session-extra").textContent = extra ? ` · ${extra}` : "";
  for (const action of ["play", "rename", "export", "delete"]) {
    tr.querySelector(`button.${action}`).setAttribute("aria-label", `${action[0].toUpperCase()}${action.slice(1)} ${name}`);
  }
  return tr;
}

function drawSessions() {
  const rows = sessionsView.sessions.map(sessionRow);
  $("sessions-body").replaceChildren(...rows);
  $("sessions-empty").hidden = rows.length > 0;
}

function sessionById(id) {
  return sessionsView.sessions.find((s) => s.session_id === id);
}

// ---------- actions ----------

async function play(id, button) {
  const s = sessionById(id);
  button.disabled = true;
  $("sessions-status").textContent = "Loading the audio…";
  try {
    const audio = await call("session_audio", { sessionId: id });
    stopPlayer();
    sessionsView.playing = id;
    $("player-title").textContent = s ? (s.title || s.session_id) : id;
    $("player-box").hidden = false;
    const player = $("player");
    player.src = audio.url;
    $("sessions-status").textContent = "";
    player.play().catch(() => { /* no sound output, or stopped by the user: the controls stay */ });
  } catch (e) {
    $("sessions-status").textContent = "The audio could not be loaded.";
  } finally {
    button.disabled = false;
  }
}

function stopPlayer() {
  const player = $("player");
  player.pause();
  player.removeAttribute("src");
  player.load();
  sessionsView.playing = null;
  $("player-box").hidden = true;
}

function startRename(row) {
  const form = row.querySelector(".rename-form");
  const input = row.querySelector(".rename-input");
  const s = sessionById(row.dataset.session);
  input.value = (s && s.title) || "";
  input.placeholder = row.dataset.session;
  row.querySelector(".session-name").hidden = true;
  form.hidden = false;
  input.focus();
}

function endRename(row) {
  row.querySelector(".rename-form").hidden = true;
  row.querySelector(".session-name").hidden = false;
}

async function saveRename(row) {
  const id = row.dataset.session;
  const title = row.querySelector(".rename-input").value;
  try {
    const kept = await call("rename_session", { sessionId: id, title });
    const s = sessionById(id);
    if (s) s.title = kept;
    drawSessions();
    if (sessionsView.playing === id) $("player-title").textContent = kept || id;
  } catch (e) {
    // shown by call()
  }
}

async function exportSession(id, button) {
  button.disabled = true;
  $("sessions-status").textContent = `Exporting ${id}…`;
  try {
    const view = await call("export_session", { sessionId: id });
    sessionsView.exported = id;
    $("export-text").textContent = `Exported to ${view.dir}`;
    $("export-files").replaceChildren(...view.files.map((f) => {
      const li = document.createElement("li");
      li.dataset.file = f.name;
      li.textContent = `${f.name} (${bytes(f.bytes)})`;
      return li;
    }));
    $("export-notes").replaceChildren(...view.notes.map((note) => {
      const li = document.createElement("li");
      li.textContent = note;
      return li;
    }));
    $("export-box").hidden = false;
    $("export-box").dataset.session = id;
    $("sessions-status").textContent = `Exported ${view.files.length} files.`;
  } catch (e) {
    $("sessions-status").textContent = "The export did not finish.";
  } finally {
    button.disabled = false;
  }
}

/** The in-page question before a delete; resolves true to delete. */
function askDelete(s) {
  const name = s.title ? `“${s.title}” (${s.session_id})` : `“${s.session_id}”`;
  const held = s.held > 0 ? ` ${seconds(s.held)} of it never reached the gateway and are lost too.` : "";
  $("delete-text").textContent =
    `Session ${name} and its ${clock(s.seconds)} of audio are deleted from this computer and from the gateway ` +
    `(recordings, speakers and result; if the gateway cannot be reached, as soon as it is back).${held} ` +
    `Exported files stay. This cannot be undone.`;
  const dialog = $("delete-dialog");
  dialog.hidden = false;
  $("delete-cancel").focus();
  return new Promise((resolve) => {
    const answer = (choice) => () => {
      dialog.hidden = true;
      $("delete-confirm").onclick = null;
      $("delete-cancel").onclick = null;
      resolve(choice);
    };
    $("delete-confirm").onclick = answer(true);
    $("delete-cancel").onclick = answer(false);
  });
}

async function deleteSession(id) {
  const s = sessionById(id);
  if (!s || !(await askDelete(s))) return;
  let outcome;
  try {
    outcome = await call("delete_session", { sessionId: id });
  } catch (e) {
    return; // shown by call()
  }
  if (sessionsView.playing === id) stopPlayer();
  if (sessionsView.exported === id) $("export-box").hidden = true;
  // The session in Setup is gone: the next recording gets a new one.
  if (ui.settings && ui.settings.session_id === id) {
    await newSession().catch(() => { /* shown */ });
  }
  sessionsView.sessions = sessionsView.sessions.filter((x) => x.session_id !== id);
  drawSessions();
  $("sessions-status").textContent = outcome.message;
  $("sessions-status").dataset.deleted = outcome.gateway;
}

function onSessionsClick(event) {
  const button = event.target.closest("button");
  const row = button && button.closest("tr[data-session]");
  if (!row) return;
  const id = row.dataset.session;
  if (button.classList.contains("play")) play(id, button);
  else if (button.classList.contains("rename")) startRename(row);
  else if (button.classList.contains("rename-cancel")) endRename(row);
  else if (button.classList.contains("export")) exportSession(id, button);
  else if (button.classList.contains("delete")) deleteSession(id);
}

function onSessionsSubmit(event) {
  const row = event.target.closest("tr[data-session]");
  if (!row) return;
  event.preventDefault();
  saveRename(row);
}

function initSessionsView() {
  if (!tauri) return;
  $("tab-record").addEventListener("click", () => showView("record"));
  $("tab-sessions").addEventListener("click", () => showView("sessions"));
  $("sessions-refresh").addEventListener("click", () => loadSessions());
  $("sessions-body").addEventListener("click", onSessionsClick);
  $("sessions-body").addEventListener("submit", onSessionsSubmit);
  $("sessions-body").addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-session]");
    if (event.key === "Escape" && row && event.target.classList.contains("rename-input")) endRename(row);
  });
  $("export-choose").addEventListener("click", () => {
    call("choose_export_folder")
      .then((dir) => { $("export-folder").textContent = dir; })
      .catch(() => { /* shown by call() */ });
  });
  $("export-open").addEventListener("click", () => {
    const id = $("export-box").dataset.session;
    if (id) call("open_export", { sessionId: id }).catch(() => {});
  });
  $("player").addEventListener("error", () => {
    if (!sessionsView.playing) return;
    $("sessions-status").textContent = "This session's audio cannot be played here.";
  });
}

initSessionsView();

// Tether's dashboard: renders the companion's snapshot live and calls the app's commands.
// No bundler: Tauri injects window.__TAURI__ (app.withGlobalTauri).
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (sel, root = document) => root.querySelector(sel);
// Every word and time shown comes from the core's dashboard; this page only renders it.
let focusKey = null;
let pasteTarget = null;
let unpairTarget = null;

function key(agent, cred) { return `${agent}/${cred}`; }

function errorText(err) {
  if (err && typeof err === "object" && "message" in err) return err.message;
  return String(err);
}

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg || "";
}

function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

function renderSummary(d) {
  const dot = $("#summary-dot");
  dot.dataset.icon = d.summary.icon;
  setText($("#summary"), d.headline);
}

function agentSection(name) {
  const main = $("#agents");
  let sec = main.querySelector(`section.agent[data-agent="${CSS.escape(name)}"]`);
  if (!sec) {
    sec = $("#agent-template").content.firstElementChild.cloneNode(true);
    sec.dataset.agent = name;
    const h = $(".agent-name", sec);
    h.textContent = name;
    h.id = `agent-${name.replace(/[^a-z0-9_-]/gi, "_")}`;
    sec.setAttribute("aria-labelledby", h.id);
    $("caption", sec).textContent = `Credentials on agent ${name}`;
    const btn = $(".unpair", sec);
    btn.setAttribute("aria-label", `Unpair agent ${name}`);
    btn.addEventListener("click", () => openUnpair(name));
    main.appendChild(sec);
  }
  return sec;
}

function credRow(sec, agent, cred) {
  const tbody = $("tbody", sec);
  const k = key(agent, cred.name);
  let row = tbody.querySelector(`tr[data-key="${CSS.escape(k)}"]`);
  if (!row) {
    row = $("#row-template").content.firstElementChild.cloneNode(true);
    row.dataset.key = k;
    row.dataset.credential = k;
    $(".cred-name", row).textContent = cred.name;
    $(".reauth", row).addEventListener("click", () => onReauth(agent, row.dataset.name, row.dataset.action));
    $(".device-reauth", row).addEventListener("click", () => onDeviceReauth(agent, row.dataset.name));
    tbody.appendChild(row);
  }
  row.dataset.name = cred.name;
  return row;
}

function showButton(btn, b) {
  btn.hidden = !b;
  if (!b) return;
  setText(btn, b.label);
  btn.setAttribute("aria-label", b.aria);
  btn.classList.toggle("secondary", !b.primary);
}

function fillRow(row, agent, c) {
  const w = c.words;
  row.dataset.state = c.state;
  row.dataset.reauth = c.reauth;
  row.dataset.action = c.button ? c.button.action : "";
  setText($(".account", row), w.account);
  const badge = $(".badge", row);
  badge.dataset.state = c.state;
  setText(badge, w.state);
  const since = $(".since", row);
  setText(since, w.since);
  since.title = w.since_at;
  const errEl = $(".error-words", row);
  setText(errEl, w.error);
  errEl.title = w.error;
  setText($(".blocked", row), w.blocked);
  setText($(".end", row), w.end);
  // How the daemon watches this credential, in its words, when no probe is in force.
  const cadEl = $(".cadence", row);
  setText(cadEl, w.cadence);
  cadEl.title = w.cadence_note;
  setText($(".ha-words", row), w.ha);
  showButton($(".reauth", row), c.button);
  showButton($(".device-reauth", row), c.device_button);
  const line = $(".progress", row);
  line.dataset.step = c.progress ? c.progress.step : "";
  setText(line, c.progress ? c.progress.text : "");
  // An agent's challenge (QR code, device code): ui/challenge.js.
  renderChallenge(row, agent, c, invoke);
  row.classList.toggle("focused", focusKey === key(agent, c.name));
}

function render(d) {
  renderSummary(d);
  $("#empty").hidden = d.agents.length !== 0;
  const seen = new Set();
  for (const a of d.agents) {
    seen.add(a.name);
    const sec = agentSection(a.name);
    setText($(".agent-where", sec), a.where_words);
    const reach = $(".reach", sec);
    reach.dataset.kind = a.reachability.kind;
    setText(reach, a.reach_words);
    const rows = new Set();
    for (const c of a.credentials) {
      const row = credRow(sec, a.name, c);
      rows.add(row.dataset.key);
      fillRow(row, a.name, c);
    }
    for (const row of sec.querySelectorAll("tr.cred")) if (!rows.has(row.dataset.key)) row.remove();
    $(".no-creds", sec).hidden = a.credentials.length !== 0;
  }
  for (const sec of document.querySelectorAll("section.agent")) if (!seen.has(sec.dataset.agent)) sec.remove();
  applyFocus();
}

let last = null;
async function refresh() {
  try {
    last = await invoke("dashboard");
    render(last);
  } catch (e) {
    toast(errorText(e));
  }
}

function applyFocus() {
  if (!focusKey) return;
  const row = document.querySelector(`tr.cred[data-key="${CSS.escape(focusKey)}"]`);
  if (!row) return;
  row.classList.add("focused");
  const btn = $(".reauth", row);
  if (!row.dataset.focusedOnce) {
    row.dataset.focusedOnce = "1";
    row.scrollIntoView({ block: "center" });
    (btn.hidden ? row.querySelector("th") : btn).focus();
  }
}

function focusCredential(agent, credential) {
  for (const r of document.querySelectorAll("tr.cred[data-focused-once]")) delete r.dataset.focusedOnce;
  focusKey = key(agent, credential);
  if (last) render(last);
}

// The row's button does what the core says it is for: re-authorize, paste, or cancel the
// running re-authorization. Progress and failures come back in the dashboard.
async function onReauth(agent, credential, action) {
  if (action === "cancel") {
    try { await invoke("cancel_reauth", { agent, credential }); } catch (e) { toast(errorText(e)); }
    return;
  }
  if (action === "paste") return openPaste(agent, credential);
  try {
    await invoke("reauth", { agent, credential });
  } catch (e) {
    // The agent sends the sign-in to another server than the first time: ask, showing both.
    if (e && e.code === "server_changed" && window.confirm(`${errorText(e)}\n\nOpen the new one anyway?`)) {
      try { await invoke("reauth", { agent, credential, acceptNewServer: true }); } catch (_) { /* in the row */ }
      return;
    }
    if (e && e.code === "already_running") toast(errorText(e));
  }
}

// Device-code sign-in: the agent asks the provider for a code and posts it as the
// credential's challenge, which the row then shows (ui/challenge.js).
async function onDeviceReauth(agent, credential) {
  try { await invoke("device_reauth", { agent, credential }); } catch (e) { toast(errorText(e)); }
}

// --- dialogs ---------------------------------------------------------------------------

function wireDialog(dlg) {
  for (const b of dlg.querySelectorAll("[data-close]")) b.addEventListener("click", () => dlg.close());
}

// `code` is set only when a tether://pair link opened the dialog: any program can open
// one, so the dialog says so and shows where it points (host and certificate, in the
// core's words), and a code the owner is already entering is never replaced.
async function openPair(code) {
  const dlg = $("#pair-dialog");
  const field = $("#pair-code");
  const origin = $("#pair-origin");
  setText($("#pair-error"), "");
  if (code === undefined) {
    field.value = "";
    setText(origin, "");
    origin.hidden = true;
  } else {
    const typed = field.value.trim();
    const keep = dlg.open && typed !== "" && typed !== code.trim();
    let words;
    try {
      words = (await invoke("pair_preview", { code })).words;
    } catch (e) {
      words = `Opened by a link from another program, which Tether cannot read as a pairing code: ${errorText(e)}`;
    }
    if (keep) words += " The code you had already entered was kept; to use the link's code instead, clear the field and open the link again.";
    else field.value = code;
    setText(origin, words);
    origin.hidden = false;
  }
  if (!dlg.open) dlg.showModal();
  field.focus();
}

async function submitPair(ev) {
  ev.preventDefault();
  const btn = $("#pair-submit");
  btn.disabled = true;
  setText($("#pair-error"), "");
  const code = $("#pair-code").value.trim();
  try {
    let result;
    try {
      result = await invoke("pair", { code });
    } catch (e) {
      // Already paired: replace only when the owner says so, after seeing old and new.
      if (!(e && e.code === "confirm_replace" && window.confirm(errorText(e)))) throw e;
      result = await invoke("pair", { code, replace: true });
    }
    const agent = result.name;
    $("#pair-dialog").close();
    $("#pair-code").value = "";
    toast(result.notice || "");
    await refresh();
    const h = document.querySelector(`section.agent[data-agent="${CSS.escape(agent)}"] h2`);
    if (h) { h.tabIndex = -1; h.focus(); }
  } catch (e) {
    setText($("#pair-error"), errorText(e));
  } finally {
    btn.disabled = false;
  }
}

function openPaste(agent, credential) {
  pasteTarget = { agent, credential };
  setText($("#paste-title"), `Paste a new token for ${agent} · ${credential}`);
  $("#paste-token").value = "";
  setText($("#paste-error"), "");
  $("#paste-new-account").checked = false;
  $("#paste-new-account-row").hidden = true;
  $("#paste-dialog").showModal();
  $("#paste-token").focus();
}

async function submitPaste(ev) {
  ev.preventDefault();
  const { agent, credential } = pasteTarget;
  const btn = $("#paste-submit");
  btn.disabled = true;
  setText($("#paste-error"), "The agent is verifying the token…");
  try {
    const newAccount = !$("#paste-new-account-row").hidden && $("#paste-new-account").checked;
    await invoke("paste_token", { agent, credential, token: $("#paste-token").value.trim(), newAccount });
    $("#paste-token").value = "";
    $("#paste-dialog").close();
  } catch (e) {
    setText($("#paste-error"), errorText(e));
    // The token works but belongs to another account: offer the on-purpose replacement.
    if (e && e.code === "wrong_account") $("#paste-new-account-row").hidden = false;
  } finally {
    btn.disabled = false;
  }
}

function openUnpair(agent) {
  unpairTarget = agent;
  setText($("#unpair-text"), `Stop watching agent ${agent} from this computer? Its credentials stay on the agent; to revoke this computer's access there, run tether agent devices on the server.`);
  setText($("#unpair-error"), "");
  $("#unpair-dialog").showModal();
}

async function submitUnpair(ev) {
  ev.preventDefault();
  try {
    await invoke("unpair", { agent: unpairTarget });
    $("#unpair-dialog").close();
    await refresh();
  } catch (e) {
    setText($("#unpair-error"), errorText(e));
  }
}

// The bounds the core enforces, sent with every dashboard; the fields take them too.
function bounds() { return last && last.bounds; }

function outOfRange(b, value) { return !(Number.isFinite(value) && value >= b.min && value <= b.max); }

async function openSettings() {
  setText($("#settings-error"), "");
  try {
    const s = await invoke("settings");
    const b = bounds();
    if (b) {
      $("#poll").min = b.poll_interval_secs.min;
      $("#poll").max = b.poll_interval_secs.max;
      $("#reminder").min = b.reminder_interval_secs.min / 3600;
      $("#reminder").max = b.reminder_interval_secs.max / 3600;
    }
    $("#poll").value = s.poll_interval_secs;
    $("#reminder").value = s.reminder_interval_secs / 3600;
    $("#quiet-on").checked = !!s.quiet_hours;
    $("#quiet-start").value = s.quiet_hours ? s.quiet_hours.start : "22:00";
    $("#quiet-end").value = s.quiet_hours ? s.quiet_hours.end : "07:00";
    syncQuiet();
    $("#settings-dialog").showModal();
    $("#poll").focus();
  } catch (e) {
    toast(errorText(e));
  }
}

function syncQuiet() {
  const on = $("#quiet-on").checked;
  $("#quiet-start").disabled = !on;
  $("#quiet-end").disabled = !on;
}

async function submitSettings(ev) {
  ev.preventDefault();
  const settings = {
    poll_interval_secs: Math.round(Number($("#poll").value)),
    reminder_interval_secs: Math.round(Number($("#reminder").value) * 3600),
    quiet_hours: $("#quiet-on").checked ? { start: $("#quiet-start").value, end: $("#quiet-end").value } : null,
  };
  const b = bounds();
  if (b) {
    for (const [field, input] of [["poll_interval_secs", "#poll"], ["reminder_interval_secs", "#reminder"]]) {
      if (outOfRange(b[field], settings[field])) {
        setText($("#settings-error"), b[field].refusal);
        $(input).focus();
        return;
      }
    }
  }
  try {
    await invoke("save_settings", { settings });
    $("#settings-dialog").close();
  } catch (e) {
    setText($("#settings-error"), errorText(e));
  }
}

// --- start -----------------------------------------------------------------------------

async function start() {
  for (const d of document.querySelectorAll("dialog")) wireDialog(d);
  $("#check-now").addEventListener("click", async () => {
    const b = $("#check-now");
    b.disabled = true;
    try { await invoke("check_now"); await refresh(); } catch (e) { toast(errorText(e)); } finally { b.disabled = false; }
  });
  $("#open-pair").addEventListener("click", () => openPair());
  $("#empty-pair").addEventListener("click", () => openPair());
  $("#open-settings").addEventListener("click", openSettings);
  $("#pair-form").addEventListener("submit", submitPair);
  $("#paste-form").addEventListener("submit", submitPaste);
  $("#unpair-form").addEventListener("submit", submitUnpair);
  $("#settings-form").addEventListener("submit", submitSettings);
  $("#quiet-on").addEventListener("change", syncQuiet);

  await listen("dashboard", (e) => { last = e.payload; render(last); });
  await listen("focus", (e) => focusCredential(e.payload.agent, e.payload.credential));
  await listen("pair-link", (e) => openPair(e.payload));

  // The window may be opened at a credential (a notification click) or with a pairing link.
  const params = new URLSearchParams(location.search);
  if (params.get("agent") && params.get("credential")) focusKey = key(params.get("agent"), params.get("credential"));
  await refresh();
  if (params.get("pair")) openPair(params.get("pair"));
  // Relative times stay true: the app sends a fresh dashboard every minute.
}

start();

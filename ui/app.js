// Tether's dashboard: renders the companion's snapshot live and calls the app's commands.
// No bundler: Tauri injects window.__TAURI__ (app.withGlobalTauri).
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (sel, root = document) => root.querySelector(sel);
const STATE_WORDS = {
  unchecked: "not checked yet", ok: "working", expiring: "expiring soon",
  degraded: "transient trouble", dead: "dead",
};
// Last progress per credential key, so a re-render keeps it.
const progress = new Map();
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

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

// Plain words for the provider errors owners meet most; the code stays visible for searching.
const ERROR_WORDS = {
  invalid_grant: "the provider no longer accepts the refresh token (revoked, expired or replaced)",
  invalid_client: "the provider does not accept the app's client id or secret",
  unauthorized_client: "the app is not allowed to use this grant",
  access_denied: "access was declined",
  temporarily_unavailable: "the provider is temporarily unavailable",
  server_error: "the provider had an internal error",
};

function lastError(e) {
  if (!e) return "";
  const words = ERROR_WORDS[e.code];
  if (words) return `${words[0].toUpperCase()}${words.slice(1)} (${e.code}).`;
  return e.description ? `${e.description} (${e.code}).` : `${e.code}.`;
}

function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

function renderSummary(d) {
  const dot = $("#summary-dot");
  dot.dataset.icon = d.summary.icon;
  setText($("#summary"), d.summary.tooltip.replace(/^Tether: /, ""));
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
    $(".reauth", row).addEventListener("click", () => onReauth(agent, row.dataset.name, row.dataset.reauth));
    tbody.appendChild(row);
  }
  row.dataset.name = cred.name;
  return row;
}

// The daemon's HA role and lease in words (protocol HaHealth), like `tether status`.
function haWords(ha) {
  const secs = (s) => `${Math.round(s)}s`;
  let out = ha.role === "holder" ? "HA holder (refreshes here)"
    : ha.holder ? `HA follower of ${ha.holder}` : "HA follower (no holder yet)";
  if (ha.lease_age_secs != null) out += `, lease ${secs(ha.lease_age_secs)} old`;
  if (ha.error) out += `; OpenBao: ${ha.error}`;
  return out;
}

function fillRow(row, agent, c) {
  row.dataset.state = c.state;
  row.dataset.reauth = c.reauth;
  setText($(".account", row), c.account ? `${c.provider} · ${c.account}` : c.provider);
  const badge = $(".badge", row);
  badge.dataset.state = c.state;
  setText(badge, STATE_WORDS[c.state] || c.state);
  const since = $(".since", row);
  setText(since, ago(c.since));
  since.title = when(c.since);
  const errText = lastError(c.last_error);
  const errEl = $(".error-words", row);
  setText(errEl, errText);
  errEl.title = errText;
  setText($(".blocked", row), c.blocked_requests ? String(c.blocked_requests) : "0");
  setText($(".end", row), c.refresh_expires_at ? when(c.refresh_expires_at) : "no known end");
  // How the daemon watches this credential: said in words when no probe is in force, so
  // "checked four times a day" is never a surprise. The daemon writes the words.
  const cadence = c.cadence || {};
  const cadEl = $(".cadence", row);
  setText(cadEl, cadence.mode === "refresh_tests" && cadence.note ? cadence.note : "");
  cadEl.title = cadence.note || "";
  // Several daemons sharing OpenBao: this one's role for the credential and the lease.
  setText($(".ha-words", row), c.ha ? haWords(c.ha) : "");

  const btn = $(".reauth", row);
  const k = key(agent, c.name);
  let p = progress.get(k);
  // An outcome line is news only until the credential's state moves on again.
  if (p && p.step === "done" && c.state !== "ok" && Date.now() - p.at > 5000) {
    progress.delete(k);
    p = undefined;
  }
  const busy = p && !["done", "failed"].includes(p.step);
  const broken = c.state === "dead" || c.state === "expiring" || c.state === "degraded";
  if (c.reauth === "none") {
    btn.hidden = true;
  } else {
    btn.hidden = false;
    const label = c.reauth === "paste" ? "Paste new token" : "Re-authorize";
    setText(btn, busy ? "Cancel" : label);
    btn.setAttribute("aria-label", busy ? `Cancel re-authorizing ${agent} · ${c.name}` : `${label} for ${agent} · ${c.name}`);
    btn.classList.toggle("secondary", !broken && !busy);
  }
  const line = $(".progress", row);
  line.dataset.step = p ? p.step : "";
  // Where the browser could not be opened, the link is shown to copy by hand. While the
  // owner is in the browser, the line keeps saying where they were sent and what for.
  let text = p ? (p.url ? `${p.message} ${p.url}` : p.message) : "";
  if (p && p.step === "browser" && p.target) text += ` (${targetWords(p.target)})`;
  setText(line, text);
  // An agent's challenge (QR code, device code): ui/challenge.js.
  renderChallenge(row, agent, c, invoke);
  row.classList.toggle("focused", focusKey === k);
}

function targetWords(t) {
  const scopes = t.scopes.length ? t.scopes.join(", ") : "the provider's default access";
  return `at ${t.server.host}, client ${t.server.client_id}, asking for ${scopes}`;
}

function pairingWords(p) {
  if (!p) return "";
  const cert = p.fingerprint ? `certificate sha256 ${p.fingerprint}` : "certificate checked by certificate authorities";
  return `${p.url} · ${cert}`;
}

function render(d) {
  renderSummary(d);
  const pairings = new Map((d.pairings || []).map((p) => [p.name, p]));
  $("#empty").hidden = d.agents.length !== 0;
  const seen = new Set();
  for (const a of d.agents) {
    seen.add(a.name);
    const sec = agentSection(a.name);
    const where = $(".agent-where", sec);
    setText(where, pairingWords(pairings.get(a.name)));
    const reach = $(".reach", sec);
    reach.dataset.kind = a.reachability.kind;
    setText(reach, a.reachability.kind === "reachable" ? "reachable"
      : a.reachability.kind === "connecting" ? "connecting…"
      : `unreachable since ${when(a.reachability.since)}: ${a.reachability.error}`);
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

async function onReauth(agent, credential, kind) {
  const k = key(agent, credential);
  const p = progress.get(k);
  if (p && !["done", "failed"].includes(p.step)) {
    try { await invoke("cancel_reauth", { agent, credential }); } catch (e) { toast(errorText(e)); }
    return;
  }
  if (kind === "paste") return openPaste(agent, credential);
  setProgress(agent, credential, "starting", "Starting…");
  try {
    await invoke("reauth", { agent, credential });
  } catch (e) {
    // The agent sends the sign-in to another server than the first time: ask, showing both.
    if (e && e.code === "server_changed" && window.confirm(`${errorText(e)}\n\nOpen the new one anyway?`)) {
      setProgress(agent, credential, "starting", "Starting…");
      try {
        await invoke("reauth", { agent, credential, acceptNewServer: true });
      } catch (e2) {
        setProgress(agent, credential, "failed", errorText(e2));
      }
      return;
    }
    setProgress(agent, credential, "failed", errorText(e));
  }
}

function setProgress(agent, credential, step, message, url, target) {
  const k = key(agent, credential);
  // Later steps keep the provider shown at "opening".
  const before = progress.get(k);
  const keep = target || (before && step !== "starting" ? before.target : undefined);
  progress.set(k, { step, message, url, target: keep, at: Date.now() });
  if (last) render(last);
}

// --- dialogs ---------------------------------------------------------------------------

function wireDialog(dlg) {
  for (const b of dlg.querySelectorAll("[data-close]")) b.addEventListener("click", () => dlg.close());
}

function openPair(code) {
  const dlg = $("#pair-dialog");
  $("#pair-code").value = code || "";
  setText($("#pair-error"), "");
  if (!dlg.open) dlg.showModal();
  $("#pair-code").focus();
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
    await invoke("paste_token", { agent, credential, token: $("#paste-token").value.trim() });
    $("#paste-token").value = "";
    $("#paste-dialog").close();
    setProgress(agent, credential, "done", "Done: the new token works.");
  } catch (e) {
    setText($("#paste-error"), errorText(e));
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

async function openSettings() {
  setText($("#settings-error"), "");
  try {
    const s = await invoke("settings");
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
  await listen("reauth-progress", (e) => {
    const p = e.payload;
    setProgress(p.agent, p.credential, p.step, p.message, p.url, p.target);
  });
  await listen("focus", (e) => focusCredential(e.payload.agent, e.payload.credential));
  await listen("pair-link", (e) => openPair(e.payload));

  // The window may be opened at a credential (a notification click) or with a pairing link.
  const params = new URLSearchParams(location.search);
  if (params.get("agent") && params.get("credential")) focusKey = key(params.get("agent"), params.get("credential"));
  await refresh();
  if (params.get("pair")) openPair(params.get("pair"));
  // Relative times ("5 min ago") stay true without a new snapshot.
  setInterval(() => { if (last) render(last); }, 30000);
}

start();

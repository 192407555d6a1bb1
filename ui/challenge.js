// Tether's dashboard: an agent's challenge in a credential's row — the QR code to scan
// (modules made by the core, drawn here on a canvas, redrawn when the agent posts a new
// one), a device code shown big with "Copy code and open page", and the countdown.
"use strict";

// A quiet zone of four modules, as QR readers expect, and whole pixels per module so the
// code stays sharp on screen (and in a screenshot).
const QR_QUIET = 4;
const QR_TARGET_PX = 168;

function drawQr(canvas, qr) {
  const n = qr.size + 2 * QR_QUIET;
  const scale = Math.max(4, Math.floor(QR_TARGET_PX / n));
  canvas.width = n * scale;
  canvas.height = n * scale;
  const g = canvas.getContext("2d");
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#000000";
  for (let y = 0; y < qr.size; y++) {
    for (let x = 0; x < qr.size; x++) {
      if (qr.modules.charCodeAt(y * qr.size + x) === 49) {
        g.fillRect((x + QR_QUIET) * scale, (y + QR_QUIET) * scale, scale, scale);
      }
    }
  }
}

function challengeCountdown(iso) {
  if (!iso) return "";
  const left = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (left <= 0) return "Expired: the agent will post a new code.";
  return `Expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

// Called by fillRow for every credential on every snapshot.
function renderChallenge(row, agent, c, invoke) {
  const box = row.querySelector(".challenge");
  if (!box) return;
  const posted = c.challenge;
  if (!posted) {
    box.hidden = true;
    delete box.dataset.version;
    delete box.dataset.expires;
    return;
  }
  box.hidden = false;
  const ch = posted.challenge;
  box.dataset.kind = ch.kind;
  box.dataset.expires = ch.expires_at || "";
  box.querySelector(".challenge-countdown").textContent = challengeCountdown(ch.expires_at);
  const version = `${posted.since}#${posted.revision}`;
  if (box.dataset.version === version) return;
  box.dataset.version = version;
  const need = box.querySelector(".challenge-need");
  const canvas = box.querySelector("canvas.qr");
  const code = box.querySelector(".challenge-code");
  const open = box.querySelector(".challenge-open");
  // The words are the core's (the dashboard's challenge_words); only the drawing is here.
  const words = c.challenge_words || { need: "", code: null, open: null, asker: "", opens: null };
  // Who asks and where the button goes come first and from the core: the owner must be
  // able to tell Tether's own sign-in from a page the agent asks them to open.
  const asker = box.querySelector(".challenge-asker");
  asker.textContent = words.asker ? words.asker.charAt(0).toUpperCase() + words.asker.slice(1) : "";
  box.dataset.origin = posted.origin || "agent";
  const host = box.querySelector(".challenge-host");
  host.hidden = !words.opens;
  host.textContent = words.opens ? words.opens.charAt(0).toUpperCase() + words.opens.slice(1) : "";
  need.textContent = words.need;
  canvas.hidden = ch.kind !== "qr";
  code.hidden = !words.code;
  code.textContent = words.code || "";
  open.hidden = !words.open;
  open.textContent = words.open || "";
  open.onclick = async () => {
    if (words.code) {
      try { await navigator.clipboard.writeText(words.code); } catch (_) { /* the code stays on screen */ }
    }
    try { await invoke("open_challenge", { agent, credential: c.name }); } catch (e) { toast(errorText(e)); }
  };
  if (ch.kind === "qr") {
    invoke("challenge_view", { agent, credential: c.name }).then((v) => {
      // A newer code may have arrived while this one was being made.
      if (v && v.qr && box.dataset.version === version) {
        drawQr(canvas, v.qr);
        canvas.dataset.revision = String(posted.revision);
      }
    }).catch((e) => toast(errorText(e)));
  }
}

// The countdowns tick without a new snapshot.
setInterval(() => {
  for (const box of document.querySelectorAll(".challenge[data-expires]:not([hidden])")) {
    box.querySelector(".challenge-countdown").textContent = challengeCountdown(box.dataset.expires);
  }
}, 1000);

"""A WhatsApp-Web-style agent on Tether (about 30 lines): when its session is logged out it
posts each QR code the library shows; the owner scans it from the tray window (or from
`tether challenge studio/whatsapp`), and the agent says when it works again.

`session` stands for your library (whatsapp-web.js through a bridge, Baileys, ...): it
calls `on_qr(text)` for every new code and `on_ready()` once linked.
"""

import time

from tether_agent import Tether

CRED = "whatsapp"          # kind = "session" in agent.toml
tether = Tether()          # TETHER_URL, TETHER_AGENT_TOKEN, TETHER_FINGERPRINT
waiting = []               # messages queued while logged out


def on_qr(text):
    # The code changes every ~20 seconds: re-posting replaces the one shown.
    tether.qr(CRED, text, expires_in=20)


def on_ready():
    tether.resolved(CRED)
    tether.report(CRED, ok=True, pending=0)


def on_logged_out(reason):
    tether.report(CRED, ok=False, detail=reason, pending=len(waiting),
                  oldest=waiting[0][0] if waiting else None, what="messages")


def heartbeat(session):
    while True:                            # keeps stale_after from firing
        tether.report(CRED, ok=session.is_linked())
        time.sleep(60)

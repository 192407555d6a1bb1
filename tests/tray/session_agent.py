#!/usr/bin/env python3
"""A stand-in for a WhatsApp-Web–style session agent, for the challenge end-to-end test.

It uses the repository's Python client (clients/python) the way a real agent would:
reports its session working, "logs out", posts a new QR code each time its driver
(the test, on stdin) says the last one was seen — three in all — then reports the session
working again, withdraws the challenge and waits for `recovered` on its own event stream.
Every step is printed as one JSON line on stdout for the driver.

Environment: TETHER_URL, TETHER_AGENT_TOKEN, TETHER_FINGERPRINT; argv[1] the credential,
argv[2:] the QR payloads.
"""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from tether_agent import Tether  # noqa: E402


def say(**what):
    print(json.dumps(what), flush=True)


def main():
    cred, payloads = sys.argv[1], sys.argv[2:]
    tether = Tether()
    tether.report(cred, ok=True)
    say(step="ok")
    sys.stdin.readline()  # the driver saw it working
    # Logged out: the phone must scan a fresh code, and each code lives ~20 s.
    tether.report(cred, ok=False, detail="logged out", pending=2, what="messages")
    for i, payload in enumerate(payloads):
        h = tether.qr(cred, payload, expires_in=20)
        say(step="qr", index=i, revision=h["challenge"]["revision"])
        sys.stdin.readline()  # the driver saw it
    # The phone scanned it: listen for `recovered` first, then say the session works.
    listening = threading.Event()
    got = {}
    waiter = threading.Thread(target=lambda: got.update(
        tether.wait_recovered(cred, timeout=30, on_listening=listening.set)))
    waiter.start()
    listening.wait(30)
    h = tether.resolved(cred)
    tether.report(cred, ok=True, pending=0)
    say(step="resolved", state=h["state"])
    waiter.join(35)
    say(step="recovered", event=got)


if __name__ == "__main__":
    main()

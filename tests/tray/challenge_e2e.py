#!/usr/bin/env python3
"""End-to-end test of an agent's challenge in the tray app: a real `tether agent serve`
with a `kind = "session"` credential, the real app driven through WebDriver, and a
stand-in session agent (tests/tray/session_agent.py, using clients/python) that logs out,
posts three changing QR codes and then says its session works again.

What it shows: each QR code reaches the window within a second of its post; a screenshot
of the window decodes (zbarimg, from Debian's zbar-tools) to exactly the payload posted;
the desktop notification (real dunst) says what is needed; the state is back to ok once
the agent resolves it, and the agent hears `recovered` on its own stream.

Run it inside scripts/tray-e2e.sh (Xvfb, D-Bus session, dunst). Screenshots go to
tests/artifacts/.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sni  # noqa: E402
from webdriver_e2e import (ROOT, TETHER, TRAY, WebDriver, free_port, log, secret_service,  # noqa: E402
                           wait_for)

AGENT = "studio"
CRED = "whatsapp"
PAYLOADS = ["2@Q1yZ8gTz0qV3,wL7b+fD2mYc=,XyZ1", "2@Rm4kA9sP2uN8,hT5c+gE3nZd=,AbC2", "2@Sn6lB0tQ3vO9,iU6d+hF4oAe=,DeF3"]


class SessionDaemon:
    def __init__(self, tmp):
        self.port = free_port()
        self.config = os.path.join(tmp, "agent.toml")
        with open(self.config, "w") as f:
            f.write(f'''name = "{AGENT}"
listen = "127.0.0.1:{self.port}"
state_dir = "{tmp}/agent-state"
backup_dirs = ["{tmp}/agent-backup"]

[[credentials]]
name = "{CRED}"
kind = "session"
provider = "whatsapp"
stale_after = "10m"
''')
        self.log = open(os.path.join(tmp, "daemon.log"), "w")
        self.proc = subprocess.Popen([TETHER, "agent", "serve", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("the daemon to listen", self._listening, timeout=30)

    def _listening(self):
        import socket
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {open(self.log.name).read()}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def tether(self, *args):
        return subprocess.run([TETHER, *args, "--config", self.config], capture_output=True, text=True, check=True)

    def pairing_code(self):
        for line in self.tether("agent", "pair", "--no-qr").stdout.splitlines():
            if line.startswith("tether://pair?"):
                return line.strip()
        raise AssertionError("no pairing code")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def decode_qr(png):
    out = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", png],
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()


def notifications():
    """Summaries and bodies of every notification dunst has shown (closes them first)."""
    subprocess.run(["dunstctl", "close-all"], check=True)
    out = subprocess.run(["dunstctl", "history"], capture_output=True, text=True, check=True).stdout
    items = json.loads(out)["data"][0]
    return [(n["summary"]["data"], n["body"]["data"]) for n in items]


def main():
    for tool in (TETHER, TRAY):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"missing {tool}: build it first (scripts/tray-e2e.sh does)")
    if not shutil.which("zbarimg"):
        raise SystemExit("zbarimg is missing: apt-get install zbar-tools (scripts/install-deps.sh test)")
    tmp = tempfile.mkdtemp(prefix="tether-challenge-e2e-")
    env = dict(os.environ,
               TETHER_CONFIG_DIR=os.path.join(tmp, "companion"),
               TETHER_SECRETS=os.environ.get("TETHER_SECRETS", "keyring" if secret_service() else "file"),
               BROWSER=os.path.join(ROOT, "tests", "tray", "browser.sh"),
               TETHER_E2E_URLS=os.path.join(tmp, "browser-urls"),
               TETHER_LOG="info,tether=debug",
               HOME=os.path.join(tmp, "home"))
    os.makedirs(env["HOME"])
    daemon = wd = agent = None
    passed = False
    try:
        daemon = SessionDaemon(tmp)
        wd = WebDriver(tmp, env)
        wait_for("the dashboard", lambda: wd.find("#open-pair"), timeout=30)
        code = daemon.pairing_code()
        wd.click("#open-pair")
        wd.type("#pair-code", code)
        wd.click("#pair-submit")
        row_css = f'tr.cred[data-key="{AGENT}/{CRED}"]'
        wait_for("the session credential in the window", lambda: wd.find_all(row_css))
        owner = sni.find_owner()

        token = daemon.tether("agent", "token", "create", "standin").stdout.strip()
        fp = urllib.parse.parse_qs(code.split("?", 1)[1])["fp"][0]
        agent_env = dict(os.environ, TETHER_URL=f"https://127.0.0.1:{daemon.port}", TETHER_AGENT_TOKEN=token,
                         TETHER_FINGERPRINT=fp)
        agent = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tray", "session_agent.py"), CRED,
                                  *PAYLOADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=agent_env)

        def step():
            line = agent.stdout.readline()
            if not line:
                raise AssertionError(f"the stand-in agent ended: exit {agent.wait()}")
            return json.loads(line)

        assert step()["step"] == "ok"
        wait_for("ok in the window", lambda: wd.attr(wd.find(row_css), "data-state") == "ok", timeout=15)
        subprocess.run(["dunstctl", "close-all"], check=True)
        agent.stdin.write("\n")
        agent.stdin.flush()
        figures = []
        for i, payload in enumerate(PAYLOADS):
            s = step()
            posted = time.monotonic()
            assert s == {"step": "qr", "index": i, "revision": i + 1}, s
            canvas = wd.find(f"{row_css} canvas.qr")
            wait_for(f"QR {i + 1} drawn in the window",
                     lambda: wd.attr(canvas, "data-revision") == str(i + 1), timeout=5, interval=0.02)
            took = time.monotonic() - posted
            figures.append(took)
            log(f"QR {i + 1} in the window {took * 1000:.0f} ms after its post")
            assert took < 1.0, f"QR {i + 1} took {took:.2f} s to reach the window"
            wd.script(f"document.querySelector('{row_css} canvas.qr').scrollIntoView({{block: 'center'}})")
            # The page has drawn it; the compositor may show it a frame later, so the
            # screenshot is taken again until it shows this code (or the deadline passes).
            seen = []

            def shows_it():
                seen.append(decode_qr(wd.screenshot(f"tray-challenge-qr-{i + 1}.png")))
                return seen[-1] == [payload]
            try:
                wait_for(f"screenshot {i + 1} to show the posted code", shows_it, timeout=5, interval=0.1)
            except AssertionError:
                raise AssertionError(f"screenshot {i + 1} decodes to {seen[-1:]}, posted {payload!r}") from None
            log(f"screenshot {i + 1} decodes to the posted payload")
            if i == 0:
                need = wd.text(wd.find(f"{row_css} .challenge-need"))
                assert need == "Scan this QR code with your phone", need
                countdown = wd.text(wd.find(f"{row_css} .challenge-countdown"))
                assert countdown.startswith("Expires in 0:"), countdown
                tray_icon = sni.icon_file(sni.properties(owner))
                assert sni.same_image(tray_icon, os.path.join(ROOT, "icons", "tray-dead.png")), tray_icon
                shown = wait_for("the notification", lambda: [n for n in notifications()
                                                              if "scan the QR code" in n[0]], timeout=10)
                summary, body = shown[0]
                assert summary == f"{AGENT} · {CRED}: scan the QR code with your phone", summary
                assert f"tether challenge {AGENT}/{CRED}" in body and "2 messages waiting" in body, body
                log(f"notification: {summary} — {body}")
            agent.stdin.write("\n")
            agent.stdin.flush()
        scans = [n for n in notifications() if "scan the QR code" in n[0]]
        assert len(scans) == 1, f"a re-posted QR code must not notify again: {scans}"
        s = step()
        assert s == {"step": "resolved", "state": "ok"}, s
        wait_for("ok again in the window", lambda: wd.attr(wd.find(row_css), "data-state") == "ok", timeout=10)
        wait_for("the QR code to go", lambda: wd.attr(wd.find(f"{row_css} .challenge"), "hidden") is not None,
                 timeout=10)
        s = step()
        assert s["step"] == "recovered" and s["event"].get("type") == "recovered", s
        wd.screenshot("tray-challenge-resolved.png")
        log(f"QR to window, ms: {', '.join(f'{f * 1000:.0f}' for f in figures)}")
        passed = True
        log("PASS")
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        for part in (wd, daemon):
            if part is not None:
                part.stop()
        if passed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"logs kept in {tmp}")


if __name__ == "__main__":
    main()

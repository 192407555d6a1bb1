#!/usr/bin/env python3
"""End-to-end test of the tray app: the real app driven through its window by WebDriver
(tauri-driver + WebKitWebDriver), against a real `tether agent serve` and a real OAuth
server (the oidc-provider fixture), with the tray read over D-Bus.

The story: pair through the window; authorize the credential once; revoke the grant at
the provider and watch the credential turn red (window, tray icon, tray menu); click
Re-authorize and watch it turn green. The browser step: the app opens consent pages
through $BROWSER, which points at tests/tray/browser.sh; the URL lands in a file this test
reads, and this test's HTTP client plays the owner on the consent pages.

Run it inside scripts/tray-e2e.sh (Xvfb, D-Bus session, dunst). Standard library only.
Screenshots of the dashboard go to tests/artifacts/.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sni  # noqa: E402
import x11  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
TETHER = os.environ.get("TETHER_BIN", os.path.join(ROOT, "target", "debug", "tether"))
TRAY = os.environ.get("TETHER_TRAY_BIN", os.path.join(ROOT, "target", "tray", "debug", "tether-tray"))
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
AGENT = "lab"
CRED = "app"


def log(msg):
    print(f"[tray-e2e] {msg}", flush=True)


def free_port():
    # The daemon and tauri-driver are separate programs that take a port number, so the
    # port is chosen here; nothing else on this test machine competes for it in between.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=60.0, interval=0.25):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported if the deadline passes
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


# --- the OAuth server ------------------------------------------------------------------

class Oidc:
    def __init__(self, tmp):
        fixture = os.path.join(ROOT, "tests", "fixtures", "oidc-provider")
        self.log = open(os.path.join(tmp, "oidc.log"), "w")
        # stdin stays open: the fixture exits when it closes, so it never outlives us.
        self.proc = subprocess.Popen(["node", "server.js", "--port", "0"], cwd=fixture,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        first = self.proc.stdout.readline()
        if not first:
            raise AssertionError("oidc-provider fixture did not start; run `npm ci` in tests/fixtures/oidc-provider")
        info = json.loads(first)
        self.issuer = info["issuer"]
        self.client_id = info["clients"]["public"]["client_id"]
        log(f"oidc-provider at {self.issuer}")

    def admin(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.issuer + path, data=data,
                                     headers={"content-type": "application/json"},
                                     method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def consent(self, authorize_url):
        """Follows the provider's redirects (keeping cookies) from the authorization URL and
        returns the URL it finally sends the browser to: the app's loopback callback."""
        issuer = urllib.parse.urlsplit(self.issuer)
        jar = {}
        url = authorize_url
        for _ in range(20):
            u = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            path = u.path + ("?" + u.query if u.query else "")
            headers = {"accept": "text/html"}
            if jar:
                headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            for k, v in resp.getheaders():
                if k.lower() == "set-cookie":
                    name, _, value = v.split(";", 1)[0].partition("=")
                    if value:
                        jar[name.strip()] = value
                    else:
                        jar.pop(name.strip(), None)
            body = resp.read()
            conn.close()
            if resp.status not in (301, 302, 303, 307, 308):
                raise AssertionError(f"consent stopped at HTTP {resp.status} on {url}: {body[:300]!r}")
            nxt = urllib.parse.urljoin(url, resp.getheader("location"))
            n = urllib.parse.urlsplit(nxt)
            if (n.hostname, n.port) != (issuer.hostname, issuer.port):
                return nxt
            url = nxt
        raise AssertionError("consent did not reach the redirect_uri in 20 redirects")

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- the agent daemon ------------------------------------------------------------------

def oidc_credential(oidc, name=CRED):
    """The `[[credentials]]` entry of a token credential at the test's oidc-provider."""
    return f'''[[credentials]]
name = "{name}"
provider = "generic"
issuer = "{oidc.issuer}"
client_id = "{oidc.client_id}"
scopes = ["openid", "offline_access"]
probe_interval = "15s"
refresh_interval = "3s"
'''


class Daemon:
    """A real `tether agent serve` named `agent`, with the given `[[credentials]]` entries
    (by default one token credential at `oidc`)."""

    def __init__(self, tmp, oidc=None, credentials=None, agent=AGENT):
        self.port = free_port()
        self.config = os.path.join(tmp, "agent.toml")
        if credentials is None:
            credentials = oidc_credential(oidc)
        with open(self.config, "w") as f:
            f.write(f'''name = "{agent}"
listen = "127.0.0.1:{self.port}"
state_dir = "{tmp}/agent-state"
backup_dirs = ["{tmp}/agent-backup"]

{credentials}''')
        self.log = open(os.path.join(tmp, "daemon.log"), "w")
        self.proc = subprocess.Popen([TETHER, "agent", "serve", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("the daemon to listen", lambda: self._listening(), timeout=30)
        log(f"tether agent serve on 127.0.0.1:{self.port}")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {open(self.log.name).read()}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def tether(self, *args):
        """Runs `tether ARGS --config agent.toml` (an operator command on this agent)."""
        return subprocess.run([TETHER, *args, "--config", self.config], capture_output=True, text=True, check=True)

    def pairing_code(self):
        out = self.tether("agent", "pair", "--no-qr")
        for line in out.stdout.splitlines():
            if line.startswith("tether://pair?"):
                return line.strip()
        raise AssertionError(f"no pairing code in: {out.stdout}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- WebDriver -------------------------------------------------------------------------

class WebDriver:
    def __init__(self, tmp, env):
        self.port = free_port()
        native = free_port()
        self.log = open(os.path.join(tmp, "tauri-driver.log"), "w")
        driver = os.environ.get("TAURI_DRIVER", shutil.which("tauri-driver") or os.path.expanduser("~/.cargo/bin/tauri-driver"))
        self.proc = subprocess.Popen([driver, "--port", str(self.port), "--native-port", str(native)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for("tauri-driver", lambda: self.call("GET", "/status")["value"] is not None, timeout=30)
        # tauri-driver answers /status before the WebKitWebDriver it starts listens on the
        # native port; a session request in between is reset. Wait for that port too.
        wait_for("WebKitWebDriver", lambda: socket.create_connection(("127.0.0.1", native), timeout=1).close() or True,
                 timeout=30)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": TRAY, "args": ["--open"]},
        }}}
        self.session = wait_for("a WebDriver session", lambda: self.call("POST", "/session", caps, timeout=60),
                                timeout=90, interval=1)["value"]["sessionId"]
        log("WebDriver session open")

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(3):
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                raise AssertionError(f"webdriver {method} {path}: {e.code} {e.read()[:500]!r}") from None
            except (http.client.RemoteDisconnected, ConnectionResetError):
                # tauri-driver reuses pooled connections to WebKitWebDriver, which closes idle
                # ones; the request then fails before it is delivered (tauri-driver logs
                # "connection reset by peer"), so sending it again is safe.
                if attempt == 2:
                    raise
                log(f"webdriver {method} {path}: connection reset by tauri-driver, retrying")

    def s(self, method, path, body=None, timeout=30):
        return self.call(method, f"/session/{self.session}{path}", body, timeout)["value"]

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css):
        return [e[ELEMENT] for e in self.s("POST", "/elements", {"using": "css selector", "value": css})]

    def attr(self, el, name):
        return self.s("GET", f"/element/{el}/attribute/{name}")

    def text(self, el):
        return self.s("GET", f"/element/{el}/text")

    def click(self, css):
        el = self.find(css)
        self.s("POST", f"/element/{el}/click", {})

    def type(self, css, text):
        el = self.find(css)
        self.s("POST", f"/element/{el}/clear", {})
        self.s("POST", f"/element/{el}/value", {"text": text})

    def script(self, js):
        return self.s("POST", "/execute/sync", {"script": js, "args": []})

    def screenshot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))
        log(f"screenshot {path}")
        return path

    def stop(self):
        try:
            self.call("DELETE", f"/session/{self.session}", timeout=15)
        except Exception:  # noqa: BLE001 - tearing down
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- the story -------------------------------------------------------------------------

def row_state(wd):
    rows = wd.find_all(f'tr.cred[data-key="{AGENT}/{CRED}"]')
    return wd.attr(rows[0], "data-state") if rows else None


def wait_state(wd, state, timeout=90):
    return wait_for(f"{AGENT}/{CRED} to be {state} in the window", lambda: row_state(wd) == state, timeout)


def consent_next_url(oidc, urls_file, seen):
    """Waits for the app to 'open the browser', plays the owner, delivers the callback."""
    def next_url():
        if not os.path.exists(urls_file):
            return None
        lines = [l for l in open(urls_file).read().splitlines() if l]
        return lines[seen] if len(lines) > seen else None
    url = wait_for("the app to open the consent page", next_url, timeout=30)
    log(f"browser asked to open {url[:80]}…")
    callback = oidc.consent(url)
    assert callback.startswith("http://127.0.0.1:"), callback
    result = {}

    def deliver():
        # The listener answers only once the daemon has stored the new tokens.
        with urllib.request.urlopen(callback, timeout=120) as r:
            result["status"], result["page"] = r.status, r.read().decode()
    t = threading.Thread(target=deliver)
    t.start()
    return t, result


def name_has_owner(name):
    """True when `name` is on the session bus."""
    out = subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                          "--object-path", "/org/freedesktop/DBus", "--method",
                          "org.freedesktop.DBus.NameHasOwner", name],
                         capture_output=True, text=True)
    return "true" in out.stdout


def secret_service():
    """True when a Secret Service (the OS keyring) answers on the session bus."""
    return name_has_owner("org.freedesktop.secrets")


def xwindows(name):
    """X windows whose title is exactly `name` (xdotool)."""
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{name}$"],
                         capture_output=True, text=True)
    return out.stdout.split()


def tray_check(owner, icon, expect_labels, forbid_labels=()):
    def ok():
        props = sni.properties(owner)
        labels = [i["label"] for i in sni.menu(owner)]
        want_icon = os.path.join(ROOT, "icons", f"tray-{icon}.png")
        return sni.same_image(sni.icon_file(props), want_icon) \
            and all(any(e in l for l in labels) for e in expect_labels) \
            and not any(any(f in l for l in labels) for f in forbid_labels)
    wait_for(f"tray icon {icon} with menu {expect_labels}", ok, timeout=30)
    log(f"tray: icon {icon}, menu has {expect_labels}")


def require_tools(*tools):
    for tool in (TETHER, TRAY, *tools):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"missing {tool}: build it first (scripts/tray-e2e.sh does)")


def app_env(tmp):
    """The tray app's environment for one test: its own config directory and home, the
    scripted browser (its URLs in `env["TETHER_E2E_URLS"]`), the real keyring when the
    session has one (scripts/tray-session.sh starts it)."""
    env = dict(os.environ,
               TETHER_CONFIG_DIR=os.path.join(tmp, "companion"),
               TETHER_SECRETS=os.environ.get("TETHER_SECRETS", "keyring" if secret_service() else "file"),
               BROWSER=os.path.join(ROOT, "tests", "tray", "browser.sh"),
               TETHER_E2E_URLS=os.path.join(tmp, "browser-urls"),
               TETHER_LOG="info,tether=debug",
               # The app's own home: "Start at login" writes ~/.config/autostart (the
               # autostart plugin ignores XDG_CONFIG_HOME), which must not touch the real one.
               HOME=os.path.join(tmp, "home"))
    os.makedirs(env["HOME"])
    return env


def pair_in_window(wd, code):
    """Pairs the app with an agent through the window's pair dialog."""
    wait_for("the dashboard", lambda: wd.find("#open-pair"), timeout=30)
    wd.click("#open-pair")
    wd.type("#pair-code", code)
    wd.click("#pair-submit")


def finish(tmp, passed, *parts):
    """Stops every started part (None for one that never started); removes the test's
    directory after a pass and keeps it, with its logs, after a failure."""
    for part in parts:
        if part is not None:
            part.stop()
    if passed:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        log(f"logs kept in {tmp}")


def main():
    require_tools()
    tmp = tempfile.mkdtemp(prefix="tether-tray-e2e-")
    env = app_env(tmp)
    urls_file = env["TETHER_E2E_URLS"]
    log(f"device tokens in: {env['TETHER_SECRETS']}")
    oidc = daemon = wd = None
    passed = False
    try:
        oidc = Oidc(tmp)
        daemon = Daemon(tmp, oidc)
        wd = WebDriver(tmp, env)
        owner = sni.find_owner()
        tray_check(owner, "idle", ["No agent paired", "Open Tether", "Quit"])

        # Pair through the window.
        pair_in_window(wd, daemon.pairing_code())
        wait_for("the paired agent in the window", lambda: wd.find_all(f'section.agent[data-agent="{AGENT}"]'))
        wait_for("the credential row", lambda: row_state(wd) is not None)
        log(f"paired; {AGENT}/{CRED} is {row_state(wd)}")

        # Authorize it a first time (a new credential has no token yet).
        wd.click(f'tr.cred[data-key="{AGENT}/{CRED}"] button.reauth')
        t, res = consent_next_url(oidc, urls_file, 0)
        wait_state(wd, "ok")
        t.join(30)
        assert res.get("status") == 200, res
        tray_check(owner, "ok", [f"{CRED}: working"], [f"Re-authorize {AGENT} · {CRED}"])
        wd.screenshot("tray-dashboard-green.png")

        # The owner revokes the grant at the provider: the daemon notices, the app turns red.
        revoked = oidc.admin("/admin/revoke", {"all": True})
        log(f"revoked at the provider: {revoked}")
        wait_state(wd, "dead")
        err_el = wd.find(f'tr.cred[data-key="{AGENT}/{CRED}"] .error-words')
        err = wait_for("the last error in words", lambda: wd.attr(err_el, "title"), timeout=10)
        assert "invalid_grant" in err, err
        log(f"window says: {err}")
        tray_check(owner, "dead", [f"Re-authorize {AGENT} · {CRED}", "is dead"])
        wd.screenshot("tray-dashboard-red.png")

        # One click: Re-authorize, consent in the "browser", green again.
        wd.click(f'tr.cred[data-key="{AGENT}/{CRED}"] button.reauth')
        t, res = consent_next_url(oidc, urls_file, 1)
        progress = wd.find(f'tr.cred[data-key="{AGENT}/{CRED}"] .progress')
        wait_state(wd, "ok")
        t.join(30)
        assert res.get("status") == 200, res
        wait_for("the progress line to say done", lambda: "Done" in wd.text(progress), timeout=10)
        tray_check(owner, "ok", [f"{CRED}: working"], [f"Re-authorize {AGENT} · {CRED}"])
        wd.screenshot("tray-dashboard-green-again.png")
        assert wd.script("return getComputedStyle(document.body).backgroundColor") == "rgb(247, 247, 245)", \
            "light theme by default"

        # The notification path: close what is on screen, kill the grant again; the core's
        # desktop notifier shows "dead" with a Re-authorize action on the real notification
        # daemon (dunst); invoking that action starts the same one-click flow.
        subprocess.run(["dunstctl", "close-all"], check=True)
        oidc.admin("/admin/revoke", {"all": True})
        wait_state(wd, "dead")
        wait_for("the dead notification on screen", lambda: int(subprocess.run(
            ["dunstctl", "count", "displayed"], capture_output=True, text=True).stdout.strip() or 0) > 0, timeout=30)
        subprocess.run(["dunstctl", "action", "0"], check=True)
        t, res = consent_next_url(oidc, urls_file, 2)
        wait_state(wd, "ok")
        t.join(30)
        assert res.get("status") == 200, res
        log("notification action re-authorized it")

        # "Pause notifications for 1 hour": a death during the pause raises no notification
        # (the tray still turns red); the menu offers to resume.
        subprocess.run(["dunstctl", "close-all"], check=True)
        pause = next(i for i in sni.menu(owner) if i["label"] == "Pause notifications for 1 hour")
        sni.click(owner, pause["id"])
        wait_for("the resume item", lambda: any(i["label"].startswith("Resume notifications (paused for")
                                                for i in sni.menu(owner)), timeout=10)

        # The tray path: the menu's "Re-authorize lab · app…" item starts the flow too.
        oidc.admin("/admin/revoke", {"all": True})
        wait_state(wd, "dead")
        time.sleep(3)  # a notification would follow the state change within milliseconds
        shown = subprocess.run(["dunstctl", "count", "displayed"], capture_output=True, text=True).stdout.strip()
        assert shown == "0", f"{shown} notification(s) shown during the pause"
        log("paused: the death raised no notification")
        item = wait_for("the tray's Re-authorize item", lambda: next(
            (i for i in sni.menu(owner) if i["label"].startswith(f"Re-authorize {AGENT} · {CRED}")), None), timeout=30)
        sni.click(owner, item["id"])
        t, res = consent_next_url(oidc, urls_file, 3)
        wait_state(wd, "ok")
        t.join(30)
        assert res.get("status") == 200, res
        log("tray menu item re-authorized it")
        resume = next(i for i in sni.menu(owner) if i["label"].startswith("Resume notifications"))
        sni.click(owner, resume["id"])
        wait_for("the pause item again", lambda: any(i["label"] == "Pause notifications for 1 hour"
                                                     for i in sni.menu(owner)), timeout=10)

        # "Start at login" (tauri-plugin-autostart) writes an XDG autostart entry.
        autostart = os.path.join(env["HOME"], ".config", "autostart")
        login = next(i for i in sni.menu(owner) if i["label"] == "Start at login")
        assert login["toggle_state"] == "0", login
        sni.click(owner, login["id"])
        wait_for("the autostart entry", lambda: os.path.isdir(autostart) and os.listdir(autostart), timeout=10)
        wait_for("the checked item", lambda: next(i for i in sni.menu(owner)
                                                  if i["label"] == "Start at login")["toggle_state"] == "1", timeout=10)
        entry = open(os.path.join(autostart, os.listdir(autostart)[0])).read()
        assert "tether-tray" in entry, entry
        sni.click(owner, next(i for i in sni.menu(owner) if i["label"] == "Start at login")["id"])
        wait_for("the autostart entry to go", lambda: not os.listdir(autostart), timeout=10)
        log("start at login toggles the autostart entry")

        # The tray menu drives the app: "Open Tether" raises the existing window.
        open_item = next(i for i in sni.menu(owner) if i["label"] == "Open Tether")
        sni.click(owner, open_item["id"])
        assert wd.find("#summary"), "window still there after Open Tether"

        # A second launch hands its arguments to the first (single instance) and exits; a
        # tether://pair? link (how a desktop opens such a link) lands in the pair dialog.
        link = daemon.pairing_code()
        second = subprocess.run([TRAY, link], env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0, second.stderr
        assert sni.find_owner() == owner, "the first instance still owns the tray"
        code_box = wd.find("#pair-code")
        wait_for("the link in the pair dialog", lambda: wd.s("GET", f"/element/{code_box}/property/value") == link,
                 timeout=15)
        # It says a link from another program opened it, and where that link points in
        # words: the daemon's host and port, and the certificate in groups of four.
        daemon_url = urllib.parse.urlsplit(urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["url"][0])
        origin = wd.find("#pair-origin")
        wait_for("the link's words", lambda: "Opened by a link from another program." in wd.text(origin), timeout=15)
        words = wd.text(origin)
        assert f"the agent at {daemon_url.hostname}:{daemon_url.port}" in words, words
        assert "certificate sha256 " in words and len(words.split("sha256 ")[1].split(")")[0].split()) == 16, words
        log(f"the pair dialog says: {words}")
        # A code the owner is entering is never replaced by a link that arrives meanwhile.
        typed = "tether://pair?url=https%3A%2F%2Fthe-owners-agent.example&fp=&secret=typed"
        wd.type("#pair-code", typed)
        other = daemon.pairing_code()
        third = subprocess.run([TRAY, other], env=env, capture_output=True, text=True, timeout=30)
        assert third.returncode == 0, third.stderr
        wait_for("the notice that the typed code was kept", lambda: "was kept" in wd.text(origin), timeout=15)
        assert wd.s("GET", f"/element/{code_box}/property/value") == typed, "the owner's code was replaced"
        wd.click("#pair-dialog [data-close]")
        log("second launch handed its pairing link to the first instance and exited; a later link kept the owner's code")

        # Closing the window (as a window manager's close button does) destroys it; the app
        # lives on in the tray, and the menu's "Open Tether" builds a new window.
        for w in xwindows("Tether"):
            x11.request_close(int(w))
        wait_for("the window to be gone", lambda: not xwindows("Tether"), timeout=15)
        assert wd.proc.poll() is None
        items = [i["label"] for i in sni.menu(owner)]
        assert "Quit" in items, items
        sni.click(owner, open_item["id"])
        wait_for("a new window", lambda: xwindows("Tether"), timeout=15)
        log("window closed and reopened from the tray; the app stayed in the tray")

        # Dark theme: with GTK's dark preference the window follows prefers-color-scheme.
        # A fresh app is needed (GTK reads the preference at start); the old one must be
        # gone first, or the new one would hand over to it as a second instance.
        # The tray's "Quit" ends it.
        sni.click(owner, next(i for i in sni.menu(owner) if i["label"] == "Quit")["id"])
        wait_for("the app to quit", lambda: not name_has_owner(owner), timeout=30)
        log("Quit in the tray menu ended the app")
        wd.stop()
        gtk = os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.join(tmp, "xdg")), "gtk-3.0")
        os.makedirs(gtk, exist_ok=True)
        with open(os.path.join(gtk, "settings.ini"), "w") as f:
            f.write("[Settings]\ngtk-application-prefer-dark-theme=1\n")
        wd = WebDriver(tmp, env)
        wait_state(wd, "ok", timeout=60)
        bg = wd.script("return getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(23, 23, 26)", f"dark theme background is {bg}"
        wd.screenshot("tray-dashboard-dark.png")
        log("dark theme follows the system preference")

        # Settings go to companion.toml; out-of-range values are refused in the dialog.
        wd.click("#open-settings")
        wd.type("#poll", "5")
        wd.click("#settings-submit")
        wait_for("the range error", lambda: "out of range" in wd.text(wd.find("#settings-error")), timeout=10)
        wd.type("#poll", "45")
        wd.click("#settings-submit")
        cfg_file = os.path.join(env["TETHER_CONFIG_DIR"], "companion.toml")
        wait_for("the new poll interval in companion.toml",
                 lambda: "poll_interval_secs = 45" in open(cfg_file).read(), timeout=10)
        log("settings saved")

        # Unpair: the agent leaves the window and the tray goes back to grey.
        owner = sni.find_owner()
        wd.click(f'section.agent[data-agent="{AGENT}"] button.unpair')
        wd.click("#unpair-submit")
        wait_for("the agent to leave the window", lambda: not wd.find_all(f'section.agent[data-agent="{AGENT}"]'))
        tray_check(owner, "idle", ["No agent paired"])
        passed = True
        log("PASS")
    finally:
        finish(tmp, passed, wd, daemon, oidc)


if __name__ == "__main__":
    main()

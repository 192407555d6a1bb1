#!/usr/bin/env python3
"""End-to-end test of re-authorizations in the tray window: the real app driven through
WebDriver against a real `tether agent serve` and the oidc-provider fixture (device flow
on, so the daemon offers device-code sign-in for the credential).

What it shows:
- a browser re-authorization keeps running when the window is reloaded: the reloaded page
  shows the running step and "Cancel" (the core keeps the step, not the page), and that
  Cancel ends the run;
- "Sign in with a code" starts the daemon's device-code re-authorization: the window shows
  the code the agent posted, a scripted "phone" enters it on the provider's pages, and the
  credential is ok — no browser on the laptop, no loopback listener.

Run it inside scripts/tray-e2e.sh (Xvfb, D-Bus session, dunst). Standard library only.
"""

import http.client
import os
import re
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webdriver_e2e import (AGENT, CRED, Daemon, Oidc, WebDriver, app_env, finish, log,  # noqa: E402
                           pair_in_window, require_tools, row_state, wait_for)

ROW = f'tr.cred[data-key="{AGENT}/{CRED}"]'


def phone_enters_code(page):
    """The owner on a phone: opens the page with the code, submits every form the provider
    shows (enter code, confirm) with the cookies it sets, following redirects through the
    (non-interactive) login and consent. Returns the last page's text."""
    jar = {}
    url, form = page, None
    for _ in range(20):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
        path = u.path + ("?" + u.query if u.query else "")
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            conn.request("POST", path, body=urllib.parse.urlencode(form), headers=headers)
        else:
            conn.request("GET", path, headers=headers)
        form = None
        resp = conn.getresponse()
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, _, value = v.split(";", 1)[0].partition("=")
                jar[name.strip()] = value
        body = resp.read().decode(errors="replace")
        conn.close()
        if resp.status in (301, 302, 303, 307, 308):
            url = urllib.parse.urljoin(url, resp.getheader("location"))
            continue
        start = body.find("<form")
        if start < 0:
            return body
        html = body[start:]
        action = re.search(r'action="([^"]*)"', html.split(">", 1)[0])
        url = urllib.parse.urljoin(url, action.group(1) if action else u.path)
        form = [(n, v) for n, v in re.findall(r'<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"', html)]
    raise AssertionError("the device pages did not end within 20 steps")


def main():
    require_tools()
    tmp = tempfile.mkdtemp(prefix="tether-reauth-window-e2e-")
    env = app_env(tmp)
    urls_file = env["TETHER_E2E_URLS"]
    oidc = daemon = wd = None
    passed = False
    try:
        oidc = Oidc(tmp)
        daemon = Daemon(tmp, oidc)
        wd = WebDriver(tmp, env)
        pair_in_window(wd, daemon.pairing_code())
        wait_for("the credential row", lambda: row_state(wd) is not None)

        # A browser re-authorization, left waiting in the browser.
        wd.click(f"{ROW} button.reauth")
        wait_for("the app to open the consent page",
                 lambda: os.path.exists(urls_file) and open(urls_file).read().strip(), timeout=30)
        line = lambda: wd.text(wd.find(f"{ROW} .progress"))  # noqa: E731
        wait_for("the waiting step in the row", lambda: "Waiting for you in the browser" in line(), timeout=10)

        # Reload the page mid-flow: the core still knows the run, so Cancel is offered.
        wd.script("location.reload()")
        wait_for("the row after the reload", lambda: wd.find_all(ROW), timeout=30)
        button = lambda: wd.text(wd.find(f"{ROW} button.reauth"))  # noqa: E731
        wait_for("Cancel after the reload", lambda: button() == "Cancel", timeout=10)
        assert "Waiting for you in the browser" in line(), line()
        log(f"after a reload the row says: {line()!r}, button {button()!r}")
        wd.click(f"{ROW} button.reauth")
        wait_for("the run to end", lambda: button() == "Re-authorize", timeout=15)
        step = wd.attr(wd.find(f"{ROW} .progress"), "data-step")
        assert step == "failed", step
        assert "cancel" in line().lower(), line()
        log(f"Cancel ended it: {line()!r}")

        # Device-code sign-in, offered because the provider has a device endpoint.
        device = f"{ROW} button.device-reauth"
        wait_for("the Sign in with a code button",
                 lambda: wd.attr(wd.find(device), "hidden") is None, timeout=60)
        assert wd.text(wd.find(device)) == "Sign in with a code", wd.text(wd.find(device))
        wd.click(device)
        box = f"{ROW} .challenge"
        wait_for("the device code in the window",
                 lambda: wd.attr(wd.find(box), "data-kind") == "device_code"
                 and wd.attr(wd.find(box), "hidden") is None and wd.text(wd.find(f"{box} .challenge-code")),
                 timeout=15)
        code = wd.text(wd.find(f"{box} .challenge-code"))
        need = wd.text(wd.find(f"{box} .challenge-need"))
        log(f"the window shows the code {code!r}: {need!r}")
        # Tether's own sign-in, and the host the button opens, read from that very URL.
        asker = wd.text(wd.find(f"{box} .challenge-asker"))
        assert asker == f"Tether's own sign-in for {CRED}", asker
        host = wd.text(wd.find(f"{box} .challenge-host"))
        issuer_host = urllib.parse.urlsplit(oidc.issuer).netloc
        assert host == f"Opens {issuer_host}", (host, issuer_host)
        log(f"the window says who asks and where it opens: {asker!r}, {host!r}")
        wd.screenshot("tray-device-code.png")
        page = f"{oidc.issuer.rstrip('/')}/device?user_code={urllib.parse.quote(code)}"
        phone_enters_code(page)
        wait_for(f"{AGENT}/{CRED} ok after the device sign-in", lambda: row_state(wd) == "ok", timeout=60)
        wait_for("the code to go", lambda: wd.attr(wd.find(box), "hidden") is not None, timeout=15)
        log("device-code sign-in from the window made the credential ok")
        passed = True
        log("PASS")
    finally:
        finish(tmp, passed, wd, daemon, oidc)


if __name__ == "__main__":
    main()

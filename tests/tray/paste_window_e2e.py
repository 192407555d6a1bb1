#!/usr/bin/env python3
"""End-to-end test of pasting a token in the tray window: the real app driven through
WebDriver against a real `tether agent serve` with a Telegram bot credential, whose
`getMe` answers come from a small loopback stand-in for the Bot API (two bots).

What it shows:
- a pasted token is verified by the agent and stored; the row shows the bot;
- a token of another bot is refused: the dialog names both bots, nothing stored changes,
  and only then the window offers "It is another account on purpose";
- with that box ticked the other bot's token replaces the stored one.

Run it inside scripts/tray-e2e.sh (Xvfb, D-Bus session, dunst). Standard library only.
"""

import http.server
import json
import os
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webdriver_e2e import (AGENT, Daemon, WebDriver, app_env, finish, log,  # noqa: E402
                           pair_in_window, require_tools, wait_for)

CRED = "telegram"
ROW = f'tr.cred[data-key="{AGENT}/{CRED}"]'
BOTS = {
    "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw": (123456789, "studio_bot"),
    "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsbw": (987654321, "other_bot"),
}
FIRST, OTHER = list(BOTS)


class BotApi:
    """`GET /bot<token>/getMe` for the two bots; 401 for any other token, as Telegram."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                token = self.path.removeprefix("/bot").removesuffix("/getMe")
                token = token.replace("%3A", ":").replace("%3a", ":")
                if token in BOTS:
                    bot_id, name = BOTS[token]
                    body = {"ok": True, "result": {"id": bot_id, "is_bot": True,
                                                    "first_name": name, "username": name}}
                    status = 200
                else:
                    body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
                    status = 401
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def paste(wd, token):
    wd.click(f"{ROW} button.reauth")
    wait_for("the paste dialog", lambda: wd.script('return document.querySelector("#paste-dialog").open'),
             timeout=10)
    # A new paste never starts with the replacement offered, let alone ticked.
    assert wd.attr(wd.find("#paste-new-account-row"), "hidden") is not None, \
        "the new-account choice is hidden until the agent refuses another account"
    assert not wd.script('return document.querySelector("#paste-new-account").checked')
    wd.type("#paste-token", token)
    wd.click("#paste-submit")


def dialog_open(wd):
    return wd.script('return document.querySelector("#paste-dialog").open')


def account(wd):
    return wd.text(wd.find(f"{ROW} .account"))


def main():
    require_tools()
    tmp = tempfile.mkdtemp(prefix="tether-paste-window-e2e-")
    env = app_env(tmp)
    api = daemon = wd = None
    passed = False
    try:
        api = BotApi()
        daemon = Daemon(tmp, credentials=(
            f'[[credentials]]\nname = "{CRED}"\nprovider = "telegram"\n'
            f'[credentials.overrides]\nprobe_url = "{api.url}"\n'))
        wd = WebDriver(tmp, env)
        pair_in_window(wd, daemon.pairing_code())
        wait_for("the credential row", lambda: wd.find_all(ROW), timeout=60)
        button = wd.text(wd.find(f"{ROW} button.reauth"))
        log(f"the row's button: {button!r}")

        # The first token: verified and stored.
        paste(wd, FIRST)
        wait_for("the dialog to close after the first token", lambda: not dialog_open(wd), timeout=30)
        wait_for("the first bot in the row", lambda: "@studio_bot" in account(wd), timeout=30)
        log(f"stored: {account(wd)!r}")

        # Another bot's token: refused, naming both; the on-purpose choice appears only now.
        paste(wd, OTHER)
        error = lambda: wd.text(wd.find("#paste-error"))  # noqa: E731
        wait_for("the refusal in the dialog", lambda: "@other_bot" in error(), timeout=30)
        words = error()
        log(f"refused: {words!r}")
        assert "this is @other_bot (bot id 987654321)" in words, words
        assert "@studio_bot (bot id 123456789)" in words, words
        assert dialog_open(wd), "the dialog stays open with the refusal"
        wait_for("the new-account choice",
                 lambda: wd.attr(wd.find("#paste-new-account-row"), "hidden") is None, timeout=10)
        wd.screenshot("tray-paste-wrong-account.png")
        assert "@studio_bot" in account(wd), f"nothing stored changed: {account(wd)!r}"

        # Ticked on purpose: the other bot replaces it.
        wd.click("#paste-new-account")
        wd.click("#paste-submit")
        wait_for("the dialog to close after the replacement", lambda: not dialog_open(wd), timeout=30)
        wait_for("the other bot in the row", lambda: "@other_bot" in account(wd), timeout=30)
        log(f"replaced on purpose: {account(wd)!r}")

        # The next paste starts without the choice again, and the same bot's new token is
        # stored without it.
        paste(wd, OTHER)
        wait_for("the dialog to close after a same-bot token", lambda: not dialog_open(wd), timeout=30)
        assert "@other_bot" in account(wd), account(wd)
        passed = True
        log("PASS")
    finally:
        finish(tmp, passed, wd, daemon, api)


if __name__ == "__main__":
    main()

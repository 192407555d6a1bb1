#!/usr/bin/env python3
"""The installed tray app opens a tether:// pairing link: `xdg-open` (the desktop's way to
open a link) finds the package's desktop entry through the MIME cache, starts a second
`tether-tray` with the link, the single-instance plugin hands it to the running app, and
its pair dialog shows the link. Nothing is stored until the owner presses Pair; then it
pairs with the installed daemon.

Run by scripts/package-test.sh inside scripts/tray-session.sh, with TETHER_TRAY_BIN (the
installed /usr/bin/tether-tray) and PAIR_LINK (a fresh code from the installed daemon).
Standard library only; the screenshot goes to tests/artifacts/package-deep-link.png.
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver_e2e as e2e  # noqa: E402  (its WebDriver client and helpers)


def log(msg):
    print(f"[package-deep-link] {msg}", flush=True)


def main():
    link = os.environ["PAIR_LINK"]
    assert link.startswith("tether://pair?"), link
    tmp = tempfile.mkdtemp(prefix="tether-package-deep-link-")
    companion = os.path.join(tmp, "companion")
    env = dict(os.environ,
               TETHER_CONFIG_DIR=companion,
               TETHER_SECRETS=os.environ.get("TETHER_SECRETS", "keyring" if e2e.secret_service() else "file"),
               HOME=os.path.join(tmp, "home"))
    os.makedirs(env["HOME"])
    wd = e2e.WebDriver(tmp, env)
    try:
        e2e.wait_for("the dashboard", lambda: wd.find("#open-pair"), timeout=30)
        # What a browser or a chat client does with a clicked link.
        opened = subprocess.run(["xdg-open", link], env=env, capture_output=True, text=True, timeout=60)
        assert opened.returncode == 0, f"xdg-open failed: {opened.stdout}{opened.stderr}"
        box = wd.find("#pair-code")
        e2e.wait_for("the link in the pair dialog",
                     lambda: wd.s("GET", f"/element/{box}/property/value") == link, timeout=30)
        assert wd.script("return document.querySelector('#pair-dialog').open") is True, "the pair dialog is not open"
        # The page, and the screen as a person sees it (the dialog is in the top layer,
        # which WebKit's page screenshot may leave out).
        e2e.wait_for("the dashboard loaded", lambda: "Loading" not in wd.text(wd.find("#summary")), timeout=30)
        wd.screenshot("package-deep-link.png")
        screen = os.path.join(e2e.ARTIFACTS, "package-deep-link-screen.png")
        subprocess.run(["import", "-window", "root", screen], check=True, timeout=30)
        log(f"screenshot {screen}")
        log("xdg-open opened the installed app's pair dialog, pre-filled with the link")
        # Asks before storing: nothing paired yet.
        toml = os.path.join(companion, "companion.toml")
        assert not os.path.exists(toml) or "[[agent]]" not in open(toml).read(), "paired before the owner agreed"
        wd.click("#pair-submit")
        e2e.wait_for("the installed daemon in the window",
                     lambda: wd.find_all('section.agent[data-agent="studio"]'), timeout=60)
        log("after Pair, the tray app is paired with the installed daemon")
    finally:
        wd.stop()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""End-to-end test of `tether demo` in tray mode: the demo under Xvfb starts the real tray
app next to the `tether` binary; the scripted revocation turns the YouTube credential red
in the tray; "Open Tether" and "Re-authorize studio · youtube…" in the tray menu (clicked
over D-Bus, as a tray host would) bring it back to green through the demo provider's
consent page, passed by tests/tray/demo_browser.py playing the person who clicks Allow.
Screenshots of the dashboard in both states go to tests/artifacts/demo-tray-red.png and
demo-tray-green.png. With --exit-when-recovered the demo then ends by itself: exit code 0,
its temporary directory removed, its tray app gone.

Run it inside scripts/tray-session.sh (Xvfb, D-Bus session, dunst); scripts/tray-e2e.sh
does. Needs `tether-tray` in the same directory as $TETHER_BIN. Standard library only.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sni  # noqa: E402
from webdriver_e2e import ROOT, ARTIFACTS, TETHER, finish, wait_for, xwindows  # noqa: E402

AGENT, OAUTH = "studio", "youtube"
LABEL = f"{AGENT} · {OAUTH}"
# The dashboard's badge backgrounds (ui/style.css --dead-bg / --ok-bg, light and dark).
DEAD_BG = ("#FBE3E1", "#3D1C1A")
OK_BG = ("#E3F4E6", "#1D3324")


def log(msg):
    print(f"[demo-tray] {msg}", flush=True)


class Demo:
    """`tether demo` as a child; its output is kept (and echoed) line by line."""

    def __init__(self, tmp, env):
        self.lines = []
        self.log = open(os.path.join(tmp, "demo.log"), "w")
        self.proc = subprocess.Popen(
            [TETHER, "demo", "--revoke-after", "2", "--exit-when-recovered"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.log.write(line)
            self.log.flush()
            print(f"  | {line}", end="", flush=True)

    def output(self):
        return "\n".join(self.lines)

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the demo exited early with {self.proc.returncode}:\n{self.output()}")
        return True

    def stop(self):
        if self.proc.poll() is None:
            # Ctrl-C: the demo's own clean shutdown (removes its files, ends its tray).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)


def children_named(pid, comm):
    """Pids of `pid`'s children whose command name is `comm`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if name == comm and ppid == pid:
            found.append(int(entry))
    return found


def trays_for(config_dir):
    """Pids of tether-tray processes started with TETHER_CONFIG_DIR=config_dir."""
    found = []
    want = f"TETHER_CONFIG_DIR={config_dir}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if open(f"/proc/{entry}/comm").read().strip() != "tether-tray":
                continue
            env = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if want in env:
            found.append(int(entry))
    return found


def tray_state(owner, icon, expect, forbid=()):
    """True when the tray shows icons/tray-<icon>.png and its menu has every label
    fragment in `expect` and none in `forbid`."""
    props = sni.properties(owner)
    labels = [i["label"].strip() for i in sni.menu(owner)]
    return sni.same_image(sni.icon_file(props), os.path.join(ROOT, "icons", f"tray-{icon}.png")) \
        and all(any(e in l for l in labels) for e in expect) \
        and not any(any(f in l for l in labels) for f in forbid)


def colour_counts(png, colours):
    """How many pixels of `png` have each of `colours` (#RRGGBB), via ImageMagick."""
    out = subprocess.run(["convert", png, "-format", "%c", "histogram:info:-"],
                         capture_output=True, text=True, check=True).stdout
    counts = dict.fromkeys(colours, 0)
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):.*?(#[0-9A-F]{6})\b", line)
        if m and m.group(2) in counts:
            counts[m.group(2)] += int(m.group(1))
    return counts


def screenshot(name, shows):
    """Screenshots the whole display (`import -window root`) until `shows(counts of the
    badge colours)` holds: the window repaints a moment after the tray changes."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)

    def take():
        subprocess.run(["import", "-window", "root", path], check=True, capture_output=True)
        counts = colour_counts(path, DEAD_BG + OK_BG)
        return counts if shows(counts) else None
    counts = wait_for(f"the dashboard in {name}", take, timeout=30, interval=0.3)
    log(f"screenshot {path} (badge pixels: {counts})")
    return path


def main():
    tray_bin = os.path.join(os.path.dirname(os.path.realpath(TETHER)), "tether-tray")
    for tool in (TETHER, tray_bin):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"missing {tool}: `tether demo` starts the tray app next to the tether binary; "
                             "build both into one directory (scripts/tray-e2e.sh does)")
    if not os.environ.get("DISPLAY"):
        raise SystemExit("no DISPLAY: run this inside scripts/tray-session.sh")
    tmp = tempfile.mkdtemp(prefix="tether-demo-tray-")
    consent_log = os.path.join(tmp, "consent.jsonl")
    env = dict(os.environ,
               BROWSER=os.path.join(ROOT, "tests", "tray", "demo_browser.py"),
               TETHER_DEMO_CONSENT=consent_log,
               HOME=os.path.join(tmp, "home"))
    os.makedirs(env["HOME"])
    demo = None
    passed = False
    try:
        demo = Demo(tmp, env)
        m = wait_for("the demo to name its directory", lambda: demo.alive() and re.search(
            r"renders (\S+)/server/agent/token\.json", demo.output()), timeout=60)
        demo_dir = m.group(1)
        assert os.path.isdir(demo_dir), demo_dir
        log(f"demo directory {demo_dir}")
        wait_for("the demo to start the tray app",
                 lambda: demo.alive() and "Started the tray app" in demo.output(), timeout=60)
        tray_pid = wait_for("the tether-tray child", lambda: demo.alive() and children_named(demo.proc.pid, "tether-tray"),
                            timeout=30)[0]
        assert trays_for(os.path.join(demo_dir, "laptop")) == [tray_pid], "the tray runs on the demo's companion"
        owner = sni.find_owner(deadline_s=60)
        log(f"tray app pid {tray_pid} serves the tray item as {owner}")

        # The scripted revocation (2 s in) reaches the daemon at its next probe; red tray.
        wait_for(f"{LABEL} dead in the tray", lambda: demo.alive() and tray_state(
            owner, "dead", [f"{OAUTH}: dead", f"Re-authorize {LABEL}…"]), timeout=120)
        log("tray: red icon, menu offers the re-authorization")

        sni.click(owner, next(i for i in sni.menu(owner) if i["label"] == "Open Tether")["id"])
        wait_for("the Tether window", lambda: xwindows("Tether"), timeout=30)
        screenshot("demo-tray-red.png", lambda c: any(c[x] > 50 for x in DEAD_BG))
        # The "dead" notification has been seen; the green screenshot shows what follows.
        subprocess.run(["dunstctl", "close-all"], check=True)

        item = next(i for i in sni.menu(owner) if i["label"].startswith(f"Re-authorize {LABEL}"))
        sni.click(owner, item["id"])
        wait_for(f"{LABEL} working in the tray", lambda: tray_state(
            owner, "ok", [f"{OAUTH}: working"], [f"Re-authorize {LABEL}"]), timeout=60)
        log("tray: green icon, nothing to re-authorize")
        screenshot("demo-tray-green.png",
                   lambda c: any(c[x] > 50 for x in OK_BG) and not any(c[x] for x in DEAD_BG))

        # The consent, as the person clicking Allow saw it.
        visits = [json.loads(l) for l in open(consent_log).read().splitlines()]
        assert len(visits) == 1, visits
        v = visits[0]
        assert "error" not in v, v
        assert v["labelled_demo"], f"the consent page does not say it is the demo: {v['consent_text']}"
        assert v["callback"].startswith("http://127.0.0.1:"), v["callback"]
        assert v["callback_status"] == 200 and f"{LABEL} is working again" in v["callback_text"], v
        log(f"consent page labelled as the demo; the callback said: {v['callback_text'][:80]}")

        # --exit-when-recovered: the demo ends by itself, cleanly, leaving nothing behind.
        code = demo.proc.wait(timeout=60)
        demo.reader.join(10)
        assert code == 0, f"the demo exited with {code}:\n{demo.output()}"
        assert "green again" in demo.output(), demo.output()
        assert not os.path.exists(demo_dir), f"{demo_dir} is left behind"
        assert not os.path.exists(f"/proc/{tray_pid}"), f"tether-tray {tray_pid} outlived the demo"
        assert not trays_for(os.path.join(demo_dir, "laptop")), "a tether-tray of the demo is still running"
        log("the demo exited 0 by itself; its directory and its tray app are gone")
        passed = True
        log("PASS")
    finally:
        finish(tmp, passed, demo)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Measures the tray app: release binary size, and idle RSS and CPU of its whole process
tree (WebKit's web and network processes included) with the window closed and open,
while it watches a paired `tether agent serve`. Prints figures; asserts nothing.

Run through scripts/tray-measure.sh (headless session with D-Bus, Xvfb and dunst).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sni  # noqa: E402
from webdriver_e2e import TETHER, TRAY, free_port, wait_for  # noqa: E402

SECS = float(os.environ.get("TETHER_MEASURE_SECS", "30"))
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(pid):
    """pid and all its descendants."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE // 1024
        except OSError:
            pass
    return total


def smaps(pids):
    """Summed (Pss, Private) in KiB: PSS shares library pages among their users, Private
    is what only this app holds."""
    pss = private = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "Pss":
                        pss += int(v.split()[0])
                    elif k in ("Private_Clean", "Private_Dirty"):
                        private += int(v.split()[0])
        except OSError:
            pass
    return pss, private


def sample(pid, label):
    time.sleep(5)  # let start-up or window creation settle
    pids = tree(pid)
    t0, c0 = time.monotonic(), cpu_ticks(pids)
    peak = 0
    end = t0 + SECS
    while time.monotonic() < end:
        peak = max(peak, rss_kib(tree(pid)))
        time.sleep(1)
    pids = tree(pid)
    cpu = (cpu_ticks(pids) - c0) / TICKS / (time.monotonic() - t0) * 100
    rss = rss_kib(pids)
    pss, private = smaps(pids)
    print(f"  {label:<26} processes {len(pids):>2}   RSS {rss / 1024:6.1f} MiB (peak {peak / 1024:.1f}, "
          f"PSS {pss / 1024:.1f}, private {private / 1024:.1f})   CPU {cpu:5.2f} %")
    return rss, cpu


def main():
    size = os.path.getsize(TRAY)
    stripped = os.path.join(tempfile.mkdtemp(), "tether-tray")
    subprocess.run(["strip", "-o", stripped, TRAY], check=True)
    print(f"tray app binary {TRAY}")
    print(f"  size {size / 1e6:.1f} MB, stripped {os.path.getsize(stripped) / 1e6:.1f} MB")

    tmp = tempfile.mkdtemp(prefix="tether-tray-measure-")
    port = free_port()
    config = os.path.join(tmp, "agent.toml")
    with open(config, "w") as f:
        f.write(f'name = "bench"\nlisten = "127.0.0.1:{port}"\nstate_dir = "{tmp}/state"\n\n'
                '[[credentials]]\nname = "bot"\nprovider = "telegram"\n')
    daemon = subprocess.Popen([TETHER, "agent", "serve", "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, TETHER_CONFIG_DIR=os.path.join(tmp, "companion"), TETHER_SECRETS="file")
    app = None
    try:
        import socket
        wait_for("the daemon", lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True)
        code = next(l for l in subprocess.run([TETHER, "agent", "pair", "--no-qr", "--config", config],
                                              capture_output=True, text=True, check=True).stdout.splitlines()
                    if l.startswith("tether://pair?"))
        subprocess.run([TETHER, "pair", code, "--yes"], env=env, check=True, capture_output=True)
        app = subprocess.Popen([TRAY], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        owner = sni.find_owner()
        print(f"idle, paired to one agent, sampled over {SECS:.0f} s:")
        sample(app.pid, "window closed (tray only)")
        open_item = next(i for i in sni.menu(owner) if i["label"] == "Open Tether")
        sni.click(owner, open_item["id"])
        wait_for("the window's web process", lambda: len(tree(app.pid)) > 1, timeout=30)
        sample(app.pid, "window open")
    finally:
        for p in (app, daemon):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

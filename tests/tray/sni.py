"""The tray app's StatusNotifierItem, read over the D-Bus session bus with `gdbus`.

libayatana-appindicator publishes the item at /org/ayatana/NotificationItem/<id> and its
menu (com.canonical.dbusmenu) at .../Menu. No tray host is needed. The owning connection
is found by introspecting each unique name for org.kde.StatusNotifierItem at that path
(a bare introspect "succeeds" on any path, so the interface must be checked).
"""

import re
import subprocess
import time

ITEM_PATH = "/org/ayatana/NotificationItem/tray_icon_tray_app_tether"
MENU_PATH = ITEM_PATH + "/Menu"


def gdbus(*args, timeout=10):
    out = subprocess.run(["gdbus", *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"gdbus {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def find_owner(deadline_s=20):
    """The unique bus name that serves the tray item (waits for it to appear)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        names = gdbus("call", "--session", "--dest", "org.freedesktop.DBus",
                      "--object-path", "/org/freedesktop/DBus",
                      "--method", "org.freedesktop.DBus.ListNames")
        for name in re.findall(r"'(:1\.\d+)'", names):
            try:
                intro = gdbus("introspect", "--session", "--dest", name, "--object-path", ITEM_PATH, timeout=3)
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
            if "org.kde.StatusNotifierItem" in intro:
                return name
        time.sleep(0.2)
    raise AssertionError(f"no StatusNotifierItem at {ITEM_PATH} on the session bus")


def properties(owner):
    """The item's properties as raw GVariant text keyed by name (strings unquoted)."""
    out = gdbus("call", "--session", "--dest", owner, "--object-path", ITEM_PATH,
                "--method", "org.freedesktop.DBus.Properties.GetAll", "org.kde.StatusNotifierItem")
    props = {}
    for key, value in re.findall(r"'(\w+)': <([^>]*)>", out):
        value = value.strip()
        m = re.fullmatch(r"(?:objectpath )?'(.*)'", value)
        props[key] = m.group(1) if m else value
    return props


def menu(owner):
    """The menu's items in order: dicts with id, label, enabled, type, toggle_state."""
    out = gdbus("call", "--session", "--dest", owner, "--object-path", MENU_PATH,
                "--method", "com.canonical.dbusmenu.GetLayout", "--", "0", "-1", "@as []")
    items = []
    for item_id, body in re.findall(r"<\((\d+), \{(.*?)\}, @av \[\]\)>", out):
        props = dict(re.findall(r"'([\w-]+)': <(.*?)>(?:, |$)", body))

        def text(k):
            v = props.get(k)
            return None if v is None else v.strip("'")

        items.append({
            "id": int(item_id),
            "label": (text("label") or "").replace("\\'", "'"),
            "enabled": props.get("enabled", "true") != "false",
            "type": text("type") or "standard",
            "toggle_state": props.get("toggle-state"),
        })
    return items


def click(owner, item_id):
    """Clicks a menu item as a tray host would; the app's menu handler runs."""
    gdbus("call", "--session", "--dest", owner, "--object-path", MENU_PATH,
          "--method", "com.canonical.dbusmenu.Event", "--",
          str(item_id), "clicked", '<"">', "0")


def same_image(a, b):
    """True when two icon files show the same picture. The tray re-encodes the PNG, which
    changes edge pixels slightly (alpha rounding), so pixels may differ by up to 20 %;
    two different tray icons differ in thousands of pixels beyond that."""
    out = subprocess.run(["compare", "-fuzz", "20%", "-metric", "AE", a, b, "null:"],
                         capture_output=True, text=True)
    try:
        return float(out.stderr.strip().split()[0]) < 50
    except (IndexError, ValueError):
        raise RuntimeError(f"imagemagick compare failed on {a} and {b}: {out.stderr}") from None


def icon_file(props):
    path = props["IconName"]
    if not path.startswith("/"):
        path = f"{props['IconThemePath']}/{path}.png"
    return path

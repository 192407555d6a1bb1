#!/usr/bin/env python3
"""The "browser" of the tray demo test ($BROWSER for `tether demo`): plays the person who
clicks Allow on the demo provider's consent page.

For the URL it is given it fetches the consent page, checks the page says it is the demo
authorization server, submits the page's form with decision=allow (as the Allow button
does), takes the provider's redirect by hand (the Location: the companion's loopback
callback) and fetches that, keeping the callback page's text. Each visit is appended as one
JSON line to $TETHER_DEMO_CONSENT. Like a real browser handing a URL to its running
instance, it returns at once and does the visit in a detached child, so the caller never
waits on it. Standard library only.
"""

import html.parser
import http.client
import json
import os
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    """The page's visible text, and the form's action and fields (hidden inputs and the
    submit buttons, by name and value)."""

    def __init__(self):
        super().__init__()
        self.text = []
        self.action = None
        self.fields = {}
        self.buttons = {}
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script", "title"):
            self._skip += 1
        elif tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name"):
            self.buttons[a.get("id") or a.get("value")] = (a["name"], a.get("value", ""))

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.text.append(data.strip())


def request(method, url, body=None):
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeError(f"refusing to leave loopback: {url}")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    path = u.path + ("?" + u.query if u.query else "")
    headers = {"accept": "text/html"}
    if body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, resp.getheader("location"), data


def visit(url):
    record = {"url": url}
    status, _, body = request("GET", url)
    page = Page()
    page.feed(body)
    text = " ".join(page.text)
    record["consent_status"] = status
    record["consent_text"] = text
    record["labelled_demo"] = "Demo authorization server" in text
    if status != 200 or "allow" not in page.buttons or page.action is None:
        raise RuntimeError(f"no consent form with an Allow button (HTTP {status}): {text[:300]}")
    name, value = page.buttons["allow"]
    form = dict(page.fields, **{name: value})
    status, location, _ = request("POST", urllib.parse.urljoin(url, page.action),
                                  urllib.parse.urlencode(form))
    record["decide_status"] = status
    record["callback"] = location
    if status not in (302, 303, 307) or not location:
        raise RuntimeError(f"the Allow form answered HTTP {status} without a redirect")
    # The companion's listener answers once the daemon has stored the new tokens.
    status, _, body = request("GET", urllib.parse.urljoin(url, location))
    page = Page()
    page.feed(body)
    record["callback_status"] = status
    record["callback_text"] = " ".join(page.text)
    return record


def main():
    url = sys.argv[1]
    out = os.environ["TETHER_DEMO_CONSENT"]
    if os.fork():
        return  # the "browser" took the URL; the visit goes on in the child
    os.setsid()
    try:
        record = visit(url)
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
        record = {"url": url, "error": f"{type(e).__name__}: {e}"}
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")
    os._exit(0)


if __name__ == "__main__":
    main()

"""The agent's side of the Tether daemon's API, over HTTPS pinned to the daemon's
certificate fingerprint (the daemon's certificate is self-signed; no CA is involved).

Standard library only. Every call sends the agent token; the token is only written to a
connection whose certificate matched the pin.
"""

import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
from datetime import datetime, timezone


class TetherError(Exception):
    """A call to the daemon failed: ``code`` is the daemon's error code (``credential_dead``,
    ``wrong_kind``, ...) or ``unreachable`` / ``bad_certificate`` for transport trouble;
    ``hint`` says how to fix it when the daemon knows."""

    def __init__(self, code, message, hint=None, status=None):
        super().__init__(f"{message}" + (f" ({hint})" if hint else ""))
        self.code = code
        self.message = message
        self.hint = hint
        self.status = status


def _normalize_fingerprint(fp):
    fp = fp.replace(":", "").strip().lower()
    if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
        raise ValueError("the fingerprint must be the 64 hex digits of the daemon certificate's SHA-256 "
                         "(the `fp=` part of the pairing code, or what `tether agent serve` prints)")
    return fp


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection that accepts exactly one certificate, by its SHA-256."""

    def __init__(self, host, port, fingerprint, timeout):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # The pin replaces name and chain checks: the daemon's certificate is self-signed.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(host, port, timeout=timeout, context=ctx)
        self._pin = fingerprint

    def connect(self):
        super().connect()
        der = self.sock.getpeercert(binary_form=True)
        got = hashlib.sha256(der).hexdigest()
        if got != self._pin:
            self.sock.close()
            self.sock = None
            raise TetherError("bad_certificate",
                              f"the daemon at {self.host}:{self.port} shows certificate sha256 {got}, "
                              f"not the pinned {self._pin}",
                              "check TETHER_FINGERPRINT; the daemon's certificate changed or this is not the daemon")


def _iso(t):
    if t is None or isinstance(t, str):
        return t
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class Tether:
    """The daemon, as the agent calls it.

    ``url`` (``https://host:port``), ``token`` (an agent token from ``tether agent token
    create``) and ``fingerprint`` (hex SHA-256 of the daemon's certificate) default to the
    environment variables ``TETHER_URL``, ``TETHER_AGENT_TOKEN`` and ``TETHER_FINGERPRINT``.
    Plain ``http://`` is accepted for loopback addresses only.
    """

    def __init__(self, url=None, token=None, fingerprint=None, timeout=30.0):
        url = url or os.environ.get("TETHER_URL")
        token = token or os.environ.get("TETHER_AGENT_TOKEN")
        fingerprint = fingerprint or os.environ.get("TETHER_FINGERPRINT")
        if not url:
            raise ValueError("no daemon URL: pass url= or set TETHER_URL (https://host:port)")
        if not token:
            raise ValueError("no agent token: pass token= or set TETHER_AGENT_TOKEN "
                             "(make one with `tether agent token create NAME` on the server)")
        u = urllib.parse.urlsplit(url)
        if u.scheme == "https":
            if not fingerprint:
                raise ValueError("no certificate fingerprint: pass fingerprint= or set TETHER_FINGERPRINT")
            self._fingerprint = _normalize_fingerprint(fingerprint)
        elif u.scheme == "http" and u.hostname in ("127.0.0.1", "::1", "localhost"):
            self._fingerprint = None
        else:
            raise ValueError(f"refusing {url!r}: use https (plain http only to 127.0.0.1, ::1 or localhost)")
        self._host = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        self._token = token
        self.timeout = timeout

    def __repr__(self):
        # Never the token.
        return f"Tether({self._host}:{self._port})"

    # --- transport -----------------------------------------------------------------

    def _connect(self, timeout):
        if self._fingerprint:
            return _PinnedConnection(self._host, self._port, self._fingerprint, timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _call(self, method, path, body=None):
        # The daemon rate-limits what a client could repeat (a challenge at most once a
        # second): a polite client waits and tries again, a few times.
        for attempt in range(4):
            try:
                return self._call_once(method, path, body)
            except TetherError as e:
                if e.code != "rate_limited" or attempt == 3:
                    raise
                time.sleep(1.0)

    def _call_once(self, method, path, body=None):
        conn = self._connect(self.timeout)
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        try:
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, TetherError):
                    raise
                raise TetherError("unreachable", f"cannot reach the Tether daemon at {self._host}:{self._port}: {e}",
                                  "is `tether agent serve` running?") from None
        finally:
            conn.close()
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = None
        if resp.status >= 400:
            value = value if isinstance(value, dict) else {}
            raise TetherError(value.get("code", "http_error"),
                              value.get("message", f"HTTP {resp.status} from the daemon"),
                              value.get("hint"), resp.status)
        return value

    @staticmethod
    def _cred(name):
        return urllib.parse.quote(name, safe="")

    # --- tokens ----------------------------------------------------------------------

    def access_token(self, credential):
        """``{"access_token", "token_type", "expires_at"}``: a fresh access token."""
        return self._call("GET", f"/v1/credentials/{self._cred(credential)}/access-token")

    def rejected(self, credential, status=None, detail=None, pending=None, oldest=None, what=None):
        """The API refused the token the daemon gave: the daemon runs one confirming refresh
        test at once. Returns ``{"credential": health, "token": {...} or None}``."""
        body = {k: v for k, v in {"status": status, "detail": detail, "pending": pending,
                                  "oldest": _iso(oldest), "what": what}.items() if v is not None}
        return self._call("POST", f"/v1/credentials/{self._cred(credential)}/rejected", body)

    # --- a human is needed ---------------------------------------------------------

    def report(self, credential, ok, detail=None, pending=None, oldest=None, what=None):
        """What the agent sees of its session: the health of a ``kind = "session"``
        credential; for any credential, the work waiting (``pending=0`` clears it)."""
        body = {k: v for k, v in {"ok": bool(ok), "detail": detail, "pending": pending,
                                  "oldest": _iso(oldest), "what": what}.items() if v is not None}
        return self._call("POST", f"/v1/credentials/{self._cred(credential)}/report", body)

    def challenge(self, credential, kind, **fields):
        """Tells the owner what to do: ``kind`` is ``qr`` (``payload``, ``expires_at``),
        ``device_code`` (``verification_uri``, ``user_code``, ``expires_at``), ``url``
        (``url``) or ``text`` (``message``). Re-post to replace it (a new QR code)."""
        body = {"kind": kind}
        for k, v in fields.items():
            if v is not None:
                body[k] = _iso(v) if isinstance(v, datetime) else v
        return self._call("POST", f"/v1/credentials/{self._cred(credential)}/challenge", body)

    def qr(self, credential, payload, expires_in=None):
        """A QR code to scan (``payload`` is the raw text it encodes)."""
        expires = None
        if expires_in is not None:
            expires = datetime.now(timezone.utc) + _seconds(expires_in)
        return self.challenge(credential, "qr", payload=payload, expires_at=expires)

    def resolved(self, credential):
        """The session works again: the challenge is withdrawn."""
        return self._call("POST", f"/v1/credentials/{self._cred(credential)}/resolved")

    def wait_recovered(self, credential, timeout=None, on_listening=None):
        """Blocks until the daemon says ``credential`` works again (its ``recovered`` event on
        the agent's own event stream); returns the event (with the ``pending`` work it
        knew of). Once listening, it also asks for an access token: a token credential
        that already works returns at once (``{"type": "recovered", "already": True}``).
        ``on_listening()`` is called each time the stream is open. Reconnects after a
        dropped stream; raises ``TimeoutError`` after ``timeout`` seconds, and
        ``TetherError`` with code ``missing_scope`` when the owner's new grant works but
        lacks a configured scope (the credential is ``degraded``: resuming would fail)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{credential} did not recover within {timeout} s")
            # The daemon sends a heartbeat every few seconds; a read this long without one
            # means a dead connection.
            read_timeout = 60.0 if left is None else max(0.1, min(60.0, left))
            conn = self._connect(read_timeout)
            try:
                resp = self._open_events(conn, credential)
                if on_listening is not None:
                    on_listening()
                try:
                    self.access_token(credential)
                    return {"type": "recovered", "credential": credential, "already": True}
                except TetherError:
                    pass  # dead, or a session credential (no token): wait for the event
                for ev in self._events(resp, credential):
                    if ev is None:
                        continue
                    if ev.get("type") == "recovered":
                        return ev
                    if ev.get("type") == "scopes_missing":
                        # The owner's new grant works but lacks a scope the agent
                        # needs: waiting on would never end, and resuming would fail.
                        raise TetherError("missing_scope", ev.get("description", "a scope is missing"),
                                          f"run `tether reauth {ev.get('agent', 'AGENT')}/{credential}` and leave every box ticked")
            except (socket.timeout, TimeoutError):
                continue
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, TetherError):
                    raise
                time.sleep(1)
            finally:
                conn.close()

    def on_recovered(self, credential, callback):
        """Calls ``callback(event)`` each time the daemon says ``credential`` works again
        (after a re-authorization, or a refresh that worked after a death), from a
        background thread that keeps the agent's event stream open and reconnects after a
        dropped one. For an agent that read its token at startup: re-read it in the
        callback. Returns a handle whose ``stop()`` ends the thread (a daemon thread: it
        also ends with the process). An exception in ``callback`` is printed and the
        listening goes on."""
        return _RecoveredListener(self, credential, callback)

    def _open_events(self, conn, credential):
        """Opens the agent's event stream for ``credential`` on ``conn``; the response, or
        the daemon's refusal as a ``TetherError``."""
        conn.request("GET", f"/v1/events?credential={self._cred(credential)}",
                     headers={"authorization": f"Bearer {self._token}",
                              "accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            raw = resp.read()
            try:
                v = json.loads(raw)
            except ValueError:
                v = {}
            raise TetherError(v.get("code", "http_error"), v.get("message", f"HTTP {resp.status}"),
                              v.get("hint"), resp.status)
        return resp

    @staticmethod
    def _events(resp, credential):
        """The events about ``credential`` on an open stream, until it ends; ``None`` for
        every other line (a heartbeat), so a reader can stop between events."""
        data = []
        while True:
            line = resp.readline()
            if not line:
                return
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                ev = json.loads("\n".join(data))
                data = []
                if ev.get("credential") == credential:
                    yield ev
            else:
                yield None

    def _stream(self, credential, stop, on_event):
        """One connection of the agent's event stream for ``credential``: ``on_event(ev)``
        for each event until the stream ends or ``stop`` is set."""
        conn = self._connect(60.0)
        try:
            for ev in self._events(self._open_events(conn, credential), credential):
                if stop.is_set():
                    return
                if ev is not None:
                    on_event(ev)
        finally:
            conn.close()


class _RecoveredListener:
    """The thread behind :meth:`Tether.on_recovered`."""

    def __init__(self, tether, credential, callback):
        import threading
        self._stop = threading.Event()
        self._tether, self._credential, self._callback = tether, credential, callback
        self._thread = threading.Thread(target=self._run, name=f"tether-recovered-{credential}",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        """Stops listening (at the next heartbeat at the latest)."""
        self._stop.set()

    def _on_event(self, ev):
        if ev.get("type") != "recovered":
            return
        try:
            self._callback(ev)
        except Exception:  # noqa: BLE001 - the agent's callback must not end the listening
            import traceback
            traceback.print_exc()

    def _run(self):
        while not self._stop.is_set():
            try:
                self._tether._stream(self._credential, self._stop, self._on_event)
            except (OSError, http.client.HTTPException, TetherError, ValueError):
                pass
            self._stop.wait(1.0)


def _seconds(s):
    from datetime import timedelta
    return timedelta(seconds=float(s))

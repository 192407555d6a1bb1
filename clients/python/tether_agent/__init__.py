"""Client for agents that run beside a Tether daemon.

- ``Tether``: the daemon's agent API over pinned TLS: ``access_token()``, ``rejected()``,
  ``report()``, ``challenge()`` / ``qr()``, ``resolved()``, ``wait_recovered()``
  (``client.py``, standard library only);
- ``TetherCredentials``: a ``google.auth.credentials.Credentials`` whose ``refresh()`` asks
  the daemon (``google.py``; needs ``pip install "tether-agent[google]"``).
"""

from .client import Tether, TetherError

__all__ = ["Tether", "TetherError", "TetherCredentials"]


def __getattr__(name):
    # google-auth is optional: only TetherCredentials needs it.
    if name == "TetherCredentials":
        from .google import TetherCredentials
        return TetherCredentials
    raise AttributeError(name)

"""``TetherCredentials``: google-auth credentials whose ``refresh()`` asks the Tether daemon
for a fresh access token (over pinned TLS), so the refresh token never leaves the daemon and
is never spent by the agent. Works with google-api-python-client and anything else that
takes ``google.auth.credentials.Credentials``.
"""

from datetime import datetime, timezone

from google.auth import credentials as ga_credentials
from google.auth import exceptions as ga_exceptions

from .client import Tether, TetherError


class TetherCredentials(ga_credentials.Credentials):
    """Credentials for daemon credential ``name``. ``tether`` is a :class:`Tether` (by
    default one from the environment)."""

    def __init__(self, name, tether=None):
        super().__init__()
        self.name = name
        self.tether = tether or Tether()

    def refresh(self, request):  # noqa: ARG002 - the daemon makes the request
        try:
            reply = self.tether.access_token(self.name)
        except TetherError as e:
            # The owner has to act: say how, in the exception google-auth callers catch.
            raise ga_exceptions.RefreshError(
                f"tether: credential {self.name} cannot be refreshed: {e}"
            ) from e
        self.token = reply["access_token"]
        expires = reply.get("expires_at")
        # google-auth compares expiry as a naive UTC datetime.
        self.expiry = (
            datetime.fromisoformat(expires.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
            if expires else None
        )

    def rejected(self, status=401, detail=None, **pending):
        """The API refused this token: the daemon confirms at once; a fresh token (when the
        grant lives) replaces the refused one."""
        reply = self.tether.rejected(self.name, status=status, detail=detail, **pending)
        token = reply.get("token")
        if token:
            self.token = token["access_token"]
        else:
            self.token = None
        return reply

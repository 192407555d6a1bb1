//! The commented example `agent.toml` that `tether agent init` writes (checked to parse by
//! `config`'s tests).

/// The commented example written by `tether agent init`.
pub const EXAMPLE: &str = r#"# Tether agent daemon configuration.
# Durations are seconds or strings such as "90s", "15m", "6h", "14d".

# The agent's name: shown in alerts and used by the companion (`tether reauth studio/youtube`).
name = "studio"

# Address the HTTPS API listens on. Plain HTTP (tls.enabled = false) is only
# accepted on a loopback address such as 127.0.0.1.
listen = "0.0.0.0:7443"

# URL that pairing codes carry; defaults to https://<listen address>.
# public_url = "https://studio.example:7443"

# Primary state: the vault, the TLS certificate, paired devices. Kept 0700.
state_dir = "/var/lib/tether"

# More vault locations, ideally on other filesystems. Every change is written to all.
backup_dirs = ["/var/backups/tether"]

# Generations kept per credential for rollback.
# keep = 5

# Lifetime of a re-authorization session started by the companion.
# session_ttl = "10m"

# How often the vault checks its locations cheaply (free space, changed or deleted
# files); damage is repaired at once. A full reconcile also runs every 10 minutes.
# vault_check_interval = "5s"

# At shutdown: stop accepting, finish vault writes, then give open connections this
# long before closing them (keep it below systemd's TimeoutStopSec, 30 s by default).
# shutdown_grace = "10s"

# A client must send a request's headers, and then its body, within this time.
# request_timeout = "10s"

# A team's OpenBao (or Vault) KV v2 mount as one more location; with ha = true, daemons
# sharing it elect one refresher per credential (see "Team / high availability" in the
# README, and dist/openbao-policy.hcl for the token's policy).
# [[vault.locations]]
# kind = "openbao"
# address = "https://bao.example:8200"
# mount = "secret"
# prefix = "tether"
# token_file = "/etc/tether/openbao-token"    # or token_env = "BAO_TOKEN", or [vault.locations.approle]
# ca_file = "/etc/tether/openbao-ca.pem"
# ha = true
# lease_ttl = "15s"

[tls]
# The daemon makes a self-signed certificate on first start and prints its
# SHA-256 fingerprint; pairing codes carry it so the companion can pin it.
enabled = true
# Extra host names for the certificate.
# names = ["studio.example"]

[[credentials]]
name = "youtube"
# Provider preset: google, x, tiktok, github, github-app, microsoft, spotify,
# dropbox, slack, telegram, github-pat, or generic (with issuer = "https://...").
provider = "google"
client_id = "1234567890-abc.apps.googleusercontent.com"
# The client secret comes from a file (first line) or an environment variable.
client_secret_file = "/etc/tether/youtube-client-secret"
# client_secret_env = "YOUTUBE_CLIENT_SECRET"
scopes = ["https://www.googleapis.com/auth/youtube.upload"]
# Liveness probe (no token is minted) and full refresh test.
probe_interval = "60s"
refresh_interval = "6h"
# State `expiring` when the refresh token's known end is this close.
warning_window = "14d"
# Refresh access tokens this long before they expire (at most half a token's lifetime).
refresh_ahead = "2m"
# reauth = "device"   # github, microsoft, generic with a device endpoint: when the grant
#                     # dies, the daemon starts a device-code sign-in itself and alerts
#                     # the page and the code (finish it from a phone, no laptop needed)
# agent_challenges = true   # let the agent ask the owner for something on this OAuth
#                           # credential (a page, a code); off: only Tether's own sign-in
# Override preset fields if your provider differs:
# [credentials.overrides]
# token_url = "https://oauth2.example/token"
# access_token_lifetime_secs = 3600   # assumed when the token answer has no expires_in

# Files your agent already reads, re-rendered after every change and repaired if wiped.
# Under the packaged systemd unit, list their directory in ReadWritePaths (the unit hides
# /home: see its comments).
[[credentials.outputs]]
path = "/srv/agent/youtube/authorized_user.json"
format = "authorized_user"   # authorized_user | token_json | env

# [[credentials.outputs]]
# path = "/srv/agent/youtube/env"
# format = "env"
# access_var = "YOUTUBE_ACCESS_TOKEN"
# refresh_var = "YOUTUBE_REFRESH_TOKEN"

# [[credentials]]
# name = "bot"
# provider = "telegram"     # paste kind: re-armed with "paste a new token"

# The agent's own session (WhatsApp Web and similar): no token. The agent reports
# POST /v1/credentials/whatsapp/report {"ok": true} and, when it needs the owner,
# posts a challenge (a QR code to scan, a device code, a URL).
# [[credentials]]
# name = "whatsapp"
# kind = "session"
# stale_after = "10m"       # dead when the agent has not reported for this long

[alerts]
# Reminders while a credential stays dead.
reminder_interval = "6h"

# Alert channels need none of the credentials above. Every alert goes to all of them.
# Secrets (bot tokens, SMTP passwords) come from files or environment variables.
[[alerts.channels]]
name = "ops-webhook"
kind = "webhook"            # JSON POST; Slack and Discord webhooks understand its `text`
url = "https://hooks.slack.com/services/T000/B000/XXXX"

# [[alerts.channels]]
# name = "phone"
# kind = "ntfy"
# topic = "tether-studio-5f2c9a"

# [[alerts.channels]]
# name = "telegram"
# kind = "telegram"
# bot_token_file = "/etc/tether/telegram-bot-token"
# chat_id = 123456789

# [[alerts.channels]]
# name = "mail"
# kind = "email"
# smtp_host = "smtp.example.com"
# tls = "starttls"
# username = "tether@example.com"
# password_file = "/etc/tether/smtp-password"
# from = "Tether <tether@example.com>"
# to = ["owner@example.com"]
"#;

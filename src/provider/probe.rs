//! Probe declarations: the cheap "is this grant still alive?" request each preset offers.
//!
//! A probe never mints or rotates anything; it asks with the current access token (or the
//! pasted secret) and `oauth::probe` reads the answer. Which request each preset uses, and
//! the document it comes from, is declared in `catalog.rs`.

use serde::{Deserialize, Serialize};
use url::Url;

/// How the probe request is made and its answer read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeMethod {
    /// Google's tokeninfo, `POST` with `access_token=…` in a form body (never in the URL,
    /// where access logs keep it): 200 with token details, 400 `invalid_token`.
    TokenInfo,
    /// RFC 7662 introspection: `POST token=…` with client authentication; `active`.
    Introspection,
    /// OIDC userinfo: `GET` with a bearer token; 401 `invalid_token` when gone.
    UserInfo,
    /// A provider API `GET` with a bearer token (GitHub `/user`, X `/2/users/me`, ...).
    BearerGet,
    /// A provider API `POST` with a bearer token and a JSON `null` body (Dropbox RPC).
    BearerPost,
    /// Slack `auth.test`: HTTP 200 with `ok:false` and `invalid_auth` / `token_revoked`.
    SlackAuthTest,
    /// Telegram `GET <url>/bot<token>/getMe` (the token one percent-encoded path segment):
    /// 401 when the bot token is revoked.
    TelegramGetMe,
}

/// One probe: a method and its URL (for Telegram, the API base URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// How to ask and how to read the answer.
    pub method: ProbeMethod,
    /// Where to ask.
    pub url: Url,
}

impl Probe {
    /// A probe from a method and a URL known to be valid.
    pub(crate) fn fixed(method: ProbeMethod, url: &str) -> Self {
        Probe {
            method,
            // Catalog URLs are string literals checked by the catalog's unit test.
            url: Url::parse(url).expect("catalog probe URLs are valid literals"),
        }
    }
}

//! The demo authorization server behind `tether demo`: a small, plainly labelled OAuth 2.0
//! provider on loopback (consent page with Allow/Deny, PKCE S256, token endpoint, refresh,
//! revocation, userinfo for probes, and a "bot token" check for the paste-kind credential).
//!
//! It exists so a newcomer sees the whole recovery loop without a Google account. It is not
//! used to prove the real flow: the test suite runs against a real third-party server.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::secret::random_token;

/// The demo's OAuth client id (a public client: PKCE, no secret).
pub const DEMO_CLIENT_ID: &str = "tether-demo";
/// Lifetime of the demo's access tokens.
pub const DEMO_ACCESS_TTL: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct Inner {
    codes: HashMap<String, PendingCode>,
    /// refresh token → grant id
    refresh: HashMap<String, u64>,
    /// access token → (grant id, expiry)
    access: HashMap<String, (u64, Instant)>,
    /// grant id → alive
    grants: HashMap<u64, bool>,
    next_grant: u64,
    /// valid "bot tokens" for the paste-kind demo credential
    bot_tokens: Vec<String>,
    refresh_calls: u64,
}

struct PendingCode {
    redirect_uri: String,
    challenge: String,
    scope: String,
    issued: Instant,
}

/// A running demo provider; cloning shares the same state.
#[derive(Clone)]
pub struct DemoProvider {
    inner: Arc<Mutex<Inner>>,
    base_url: String,
}

impl DemoProvider {
    /// Serves the demo provider on `listener` until `shutdown` resolves.
    pub fn start(
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<DemoProvider> {
        let addr = listener.local_addr()?;
        let provider = DemoProvider {
            inner: Arc::new(Mutex::new(Inner::default())),
            base_url: format!("http://{addr}"),
        };
        let app = router(provider.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(provider)
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Issues a grant directly (what a completed consent would give) and returns
    /// `(access_token, refresh_token)`, so the demo starts with a working credential.
    pub fn issue_grant(&self) -> (String, String) {
        let mut inner = self.lock();
        issue(&mut inner)
    }

    /// Issues a valid bot token for the paste-kind credential.
    pub fn issue_bot_token(&self) -> String {
        // Shaped like a real bot token (`<bot id>:<secret>`), which the paste check demands.
        let token = format!("100200300:{}", random_token(18));
        self.lock().bot_tokens.push(token.clone());
        token
    }

    /// Revokes every OAuth grant, as a provider revoking access would (bot tokens stay).
    pub fn revoke_grants(&self) {
        let mut inner = self.lock();
        for alive in inner.grants.values_mut() {
            *alive = false;
        }
    }

    /// How many refresh-token grants the token endpoint has served.
    pub fn refresh_calls(&self) -> u64 {
        self.lock().refresh_calls
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        // A panic while holding this lock would be a bug in this file; the demo state is
        // still consistent enough to keep serving, so recover the guard.
        self.inner.lock()
    }
}

fn issue(inner: &mut Inner) -> (String, String) {
    inner.next_grant += 1;
    let grant = inner.next_grant;
    inner.grants.insert(grant, true);
    let access = format!("demo-at:{}", random_token(18));
    let refresh = format!("demo-rt:{}", random_token(24));
    inner
        .access
        .insert(access.clone(), (grant, Instant::now() + DEMO_ACCESS_TTL));
    inner.refresh.insert(refresh.clone(), grant);
    (access, refresh)
}

fn router(provider: DemoProvider) -> Router {
    Router::new()
        .route("/authorize", get(consent_page).post(decide))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/userinfo", get(userinfo))
        // Telegram-style `GET /bot<token>/getMe` cannot be a route pattern (the token is
        // part of a path segment), so the fallback reads it.
        .fallback(bot_get_me)
        .with_state(provider)
}

#[derive(Deserialize)]
struct AuthorizeParams {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    decision: Option<String>,
}

fn loopback_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("localhost"))
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn consent_page(Query(p): Query<AuthorizeParams>) -> Response {
    if p.client_id != DEMO_CLIENT_ID
        || !loopback_redirect(&p.redirect_uri)
        || p.code_challenge_method != "S256"
    {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Bad authorization request</h1><p>unknown client, non-loopback redirect_uri or no PKCE S256.</p>"),
        )
            .into_response();
    }
    let hidden = [
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("state", &p.state),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("scope", &p.scope),
    ]
    .iter()
    .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
    .collect::<String>();
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo provider: allow Tether?</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}}
.demo{{background:#fff3cd;border:1px solid #e0a000;padding:.5rem 1rem;border-radius:6px}}
button{{font-size:1.1rem;padding:.5rem 1.5rem;margin-right:1rem}}</style></head><body>
<p class="demo"><strong>Demo authorization server.</strong> This is Tether's built-in stand-in for a
provider such as Google; no real account is involved.</p>
<h1>Allow <em>studio agent</em> to upload videos?</h1>
<p>Scopes: <code>{scope}</code></p>
<form method="post" action="/authorize">{hidden}
<button type="submit" name="decision" value="allow" id="allow" autofocus>Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>"#,
        scope = escape(&p.scope),
    ))
    .into_response()
}

async fn decide(State(provider): State<DemoProvider>, Form(p): Form<AuthorizeParams>) -> Response {
    if p.client_id != DEMO_CLIENT_ID || !loopback_redirect(&p.redirect_uri) {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let Ok(mut target) = url::Url::parse(&p.redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    if p.decision.as_deref() == Some("allow") {
        let code = random_token(24);
        provider.lock().codes.insert(
            code.clone(),
            PendingCode {
                redirect_uri: p.redirect_uri.clone(),
                challenge: p.code_challenge.clone(),
                scope: p.scope.clone(),
                issued: Instant::now(),
            },
        );
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &p.state);
    } else {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "the user declined")
            .append_pair("state", &p.state);
    }
    Redirect::to(target.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

async fn token(State(provider): State<DemoProvider>, Form(f): Form<TokenForm>) -> Response {
    let mut inner = provider.lock();
    let scope;
    match f.grant_type.as_str() {
        "authorization_code" => {
            let Some(pending) = f.code.as_deref().and_then(|c| inner.codes.remove(c)) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used authorization code",
                );
            };
            if pending.issued.elapsed() > Duration::from_secs(600)
                || f.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str())
                || f.code_verifier.as_deref().map(s256).as_deref()
                    != Some(pending.challenge.as_str())
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code expired, redirect_uri mismatch or PKCE verification failed",
                );
            }
            scope = pending.scope;
            let (access, refresh) = issue(&mut inner);
            token_reply(&access, Some(&refresh), &scope)
        }
        "refresh_token" => {
            inner.refresh_calls += 1;
            let grant = f
                .refresh_token
                .as_deref()
                .and_then(|r| inner.refresh.get(r))
                .copied();
            match grant {
                Some(g) if inner.grants.get(&g) == Some(&true) => {
                    let access = format!("demo-at:{}", random_token(18));
                    inner
                        .access
                        .insert(access.clone(), (g, Instant::now() + DEMO_ACCESS_TTL));
                    token_reply(&access, None, "demo.upload")
                }
                _ => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                ),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        ),
    }
}

fn token_reply(access: &str, refresh: Option<&str>, scope: &str) -> Response {
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": DEMO_ACCESS_TTL.as_secs(),
        "scope": scope,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = serde_json::Value::String(r.to_owned());
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[derive(Deserialize)]
struct RevokeForm {
    token: String,
}

async fn revoke(State(provider): State<DemoProvider>, Form(f): Form<RevokeForm>) -> StatusCode {
    let mut inner = provider.lock();
    let grant = inner
        .refresh
        .get(&f.token)
        .copied()
        .or_else(|| inner.access.get(&f.token).map(|(g, _)| *g));
    if let Some(g) = grant {
        inner.grants.insert(g, false);
    }
    // RFC 7009: unknown tokens are not an error.
    StatusCode::OK
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn userinfo(State(provider): State<DemoProvider>, headers: HeaderMap) -> Response {
    let inner = provider.lock();
    let alive = bearer(&headers)
        .and_then(|t| inner.access.get(t))
        .is_some_and(|(g, exp)| *exp > Instant::now() && inner.grants.get(g) == Some(&true));
    if alive {
        Json(serde_json::json!({"sub": "demo-user", "name": "Demo Channel"})).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            Json(serde_json::json!({"error": "invalid_token", "error_description": "access token revoked or expired"})),
        )
            .into_response()
    }
}

async fn bot_get_me(State(provider): State<DemoProvider>, uri: axum::http::Uri) -> Response {
    let token = uri
        .path()
        .strip_prefix("/bot")
        .and_then(|rest| rest.strip_suffix("/getMe"));
    let Some(token) = token else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let inner = provider.lock();
    if inner.bot_tokens.iter().any(|b| b == token) {
        Json(serde_json::json!({"ok": true, "result": {"id": 1, "is_bot": true, "username": "demo_bot"}}))
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                serde_json::json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
            .into_response()
    }
}

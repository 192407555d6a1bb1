//! The HTTP client for every provider call: rustls, redirects off, bounded timeouts.

use std::time::Duration;

/// Total time a provider request may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to establish a connection by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client every `oauth` call expects: rustls (no OpenSSL), no redirects (a token
/// endpoint that redirects is either misconfigured or trying to send our secrets elsewhere:
/// SSRF), `Accept: application/json` (GitHub answers form-encoded otherwise), 10 s connect
/// and 30 s total timeouts.
pub fn http_client() -> reqwest::Client {
    http_client_with_timeouts(DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)
}

/// [`http_client`] with other timeouts (tests use short ones).
pub fn http_client_with_timeouts(connect: Duration, total: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .timeout(total)
        .default_headers(headers)
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .build()
        // Only a TLS back-end that fails to initialise makes this fail; rustls with the
        // built-in roots does not.
        .expect("the rustls HTTP client builds from a static configuration")
}

//! Sending one HTTP request for an HTTP-based channel and turning the answer into a result.

use super::error::ChannelError;

/// Bytes of an error answer kept for the error message.
const MAX_DETAIL_BYTES: usize = 4096;
/// Characters of an error answer shown in the error message.
const MAX_DETAIL_CHARS: usize = 200;

/// `host[:port]` of a URL, the only part of it errors and logs may show.
pub(crate) fn host_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Sends `request`; a 2xx answer is returned, anything else becomes a [`ChannelError`].
/// `scrub` is a secret that must not appear in the error even if the server echoes it.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    host: &str,
    scrub: Option<&str>,
) -> Result<reqwest::Response, ChannelError> {
    let response = request
        .send()
        .await
        .map_err(|e| ChannelError::Unreachable {
            host: host.to_string(),
            // reqwest puts the full URL in its messages; Telegram's holds the bot token.
            source: e.without_url(),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let detail = read_detail(response).await;
    let detail = match scrub {
        Some(secret) if !secret.is_empty() => detail.replace(secret, "[redacted]"),
        _ => detail,
    };
    Err(ChannelError::Rejected {
        host: host.to_string(),
        status: status.as_u16(),
        detail,
    })
}

/// The start of an error answer, read with a size cap so a hostile server cannot make
/// the daemon buffer a huge body.
async fn read_detail(mut response: reqwest::Response) -> String {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < MAX_DETAIL_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    buf.truncate(MAX_DETAIL_BYTES);
    let text = String::from_utf8_lossy(&buf);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.is_empty() {
        "(empty answer)".to_string()
    } else {
        super::text::truncate(trimmed, MAX_DETAIL_CHARS)
    }
}

/// True for hosts whose traffic never leaves the machine (`localhost`, 127.0.0.0/8, `::1`).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses a channel URL: `https`, or `http` only to a loopback host.
pub(crate) fn parse_url(
    channel: &str,
    field: &str,
    raw: &str,
) -> Result<reqwest::Url, super::error::AlertsConfigError> {
    let invalid = |problem: String| super::error::AlertsConfigError::Invalid {
        channel: channel.to_string(),
        problem,
    };
    let url = reqwest::Url::parse(raw).map_err(|e| {
        invalid(format!(
            "{field} is not a valid URL ({e}); write it as https://host/path"
        ))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if url.host_str().is_some_and(is_loopback_host) => {}
        "http" => {
            return Err(invalid(format!(
            "{field} uses plain http to {}; alerts name your agent and credentials, so use https",
            url.host_str().unwrap_or("?")
        )))
        }
        other => return Err(invalid(format!("{field} has scheme {other:?}; use https"))),
    }
    if url.host_str().is_none() {
        return Err(invalid(format!("{field} has no host")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.5.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("::1"));
        assert!(!is_loopback_host("smtp.example.org"));
        assert!(!is_loopback_host("10.0.0.1"));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(parse_url("c", "url", "http://127.0.0.1:9/x").is_ok());
        assert!(parse_url("c", "url", "https://hooks.example.org/x").is_ok());
        let err = parse_url("c", "url", "http://hooks.example.org/x").unwrap_err();
        assert!(err.to_string().contains("use https"), "{err}");
        assert!(parse_url("c", "url", "ftp://x/").is_err());
        assert!(parse_url("c", "url", "not a url").is_err());
    }
}

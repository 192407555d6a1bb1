//! Discovery for the `generic` preset: OpenID Connect Discovery 1.0
//! (`/.well-known/openid-configuration`) with RFC 8414 authorization server metadata
//! (`/.well-known/oauth-authorization-server`) as the fallback.

use super::catalog::preset;
use super::endpoint::{check_endpoint, is_loopback};
use super::probe::{Probe, ProbeMethod};
use super::spec::{ClientAuth, PkceMode, Provider};
use serde::Deserialize;
use url::Url;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Neither metadata document could be fetched.
    #[error("could not fetch the metadata of issuer {issuer} ({reason}); check the issuer URL, or set auth_url and token_url instead")]
    Unreachable {
        /// The issuer.
        issuer: String,
        /// What went wrong (status or transport error, never a secret).
        reason: String,
    },
    /// The document is not valid metadata.
    #[error("issuer {issuer} published metadata that is not usable: {reason}")]
    Invalid {
        /// The issuer.
        issuer: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    introspection_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The metadata URLs to try, in order: OIDC discovery appends to the issuer's path,
/// RFC 8414 inserts the well-known segment before it.
fn candidates(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    for u in [&mut oidc, &mut rfc8414] {
        u.set_query(None);
        u.set_fragment(None);
    }
    vec![oidc, rfc8414]
}

/// Builds a `generic` provider from the issuer's metadata: endpoints, PKCE, client
/// authentication, and a probe (introspection when offered, else userinfo).
/// The issuer and every endpoint in its metadata must obey [`check_endpoint`] (https;
/// http only on loopback): an issuer on plain http could be answered by anyone on the path,
/// and a document pointing at plain-http endpoints would send codes and tokens in clear.
/// A remote issuer's endpoints may not be on loopback either (see `from_metadata`).
pub async fn discover(http: &reqwest::Client, issuer: &Url) -> Result<Provider, DiscoveryError> {
    let issuer_s = issuer.as_str().trim_end_matches('/').to_owned();
    check_endpoint(issuer).map_err(|e| DiscoveryError::Invalid {
        issuer: issuer_s.clone(),
        reason: format!("the issuer: {e}"),
    })?;
    let mut reasons = Vec::new();
    for url in candidates(issuer) {
        let resp = match http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                reasons.push(format!("{url}: {}", e.without_url()));
                continue;
            }
        };
        if !resp.status().is_success() {
            reasons.push(format!("{url}: HTTP {}", resp.status().as_u16()));
            continue;
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| DiscoveryError::Unreachable {
                issuer: issuer_s.clone(),
                reason: e.without_url().to_string(),
            })?;
        let meta: Metadata =
            serde_json::from_slice(&body).map_err(|e| DiscoveryError::Invalid {
                issuer: issuer_s.clone(),
                reason: format!("{url}: {e}"),
            })?;
        return from_metadata(&issuer_s, meta);
    }
    Err(DiscoveryError::Unreachable {
        issuer: issuer_s,
        reason: reasons.join("; "),
    })
}

fn from_metadata(issuer: &str, meta: Metadata) -> Result<Provider, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::Invalid {
        issuer: issuer.to_owned(),
        reason,
    };
    // OIDC Discovery 4.3 / RFC 8414 3.3: the issuer in the document must be the one asked.
    if meta.issuer.trim_end_matches('/') != issuer {
        return Err(invalid(format!(
            "it names issuer `{}`, not `{issuer}`",
            meta.issuer
        )));
    }
    // Loopback is the daemon's own machine, never a remote issuer's: a document from
    // elsewhere that points an endpoint there (plain http passes `check_endpoint` on
    // loopback) would send codes, client secrets and tokens to whatever listens on this
    // host. Loopback endpoints only for an issuer that is itself on loopback.
    let issuer_is_local = Url::parse(issuer).is_ok_and(|u| is_loopback(&u));
    let parse = |field: &str, v: Option<String>| -> Result<Option<Url>, DiscoveryError> {
        v.map(|s| {
            let u = Url::parse(&s).map_err(|e| invalid(format!("{field} `{s}`: {e}")))?;
            check_endpoint(&u).map_err(|e| invalid(format!("{field}: {e}")))?;
            if is_loopback(&u) && !issuer_is_local {
                return Err(invalid(format!(
                    "{field} `{u}` is on this machine (loopback) but the issuer is not; a remote issuer's endpoints must be its own (fix the metadata, or set auth_url and token_url in the credential's overrides)"
                )));
            }
            Ok(u)
        })
        .transpose()
    };
    let auth_url = parse("authorization_endpoint", meta.authorization_endpoint)?
        .ok_or_else(|| invalid("no authorization_endpoint".into()))?;
    let token_url = parse("token_endpoint", meta.token_endpoint)?
        .ok_or_else(|| invalid("no token_endpoint".into()))?;
    let introspection = parse("introspection_endpoint", meta.introspection_endpoint)?;
    let userinfo = parse("userinfo_endpoint", meta.userinfo_endpoint)?;
    // The generic preset always exists (it is a literal in the catalog).
    let mut p = preset("generic").expect("the generic preset exists");
    p.auth_url = Some(auth_url);
    p.token_url = Some(token_url);
    p.revoke_url = parse("revocation_endpoint", meta.revocation_endpoint)?;
    p.device_authorization_url = parse(
        "device_authorization_endpoint",
        meta.device_authorization_endpoint,
    )?;
    // S256 unless the server says it supports PKCE without S256 (then it cannot take it).
    p.pkce = match &meta.code_challenge_methods_supported {
        Some(m) if !m.iter().any(|m| m == "S256") => PkceMode::None,
        _ => PkceMode::S256,
    };
    // RFC 8414 2: the default when absent is client_secret_basic.
    p.client_auth = match &meta.token_endpoint_auth_methods_supported {
        Some(m) if m.iter().any(|m| m == "client_secret_basic") => ClientAuth::Basic,
        Some(m) if m.iter().any(|m| m == "client_secret_post") => ClientAuth::Post,
        Some(m) if m.iter().any(|m| m == "none") => ClientAuth::None,
        _ => ClientAuth::Basic,
    };
    // Introspection first (it answers for any token), userinfo as the fallback: a public
    // client cannot authenticate to introspection (`Provider::for_public_client`), and a
    // server that refuses it makes the probe misconfigured, not the grant dead.
    let mut probes = introspection
        .map(|url| Probe {
            method: ProbeMethod::Introspection,
            url,
        })
        .into_iter()
        .chain(userinfo.map(|url| Probe {
            method: ProbeMethod::UserInfo,
            url,
        }));
    p.probe = probes.next();
    p.probe_fallbacks = probes.collect();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_both_specs() {
        let c = candidates(&Url::parse("https://id.example/tenant/").unwrap());
        assert_eq!(
            c[0].as_str(),
            "https://id.example/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            c[1].as_str(),
            "https://id.example/.well-known/oauth-authorization-server/tenant"
        );
    }

    fn metadata(issuer: &str, token_endpoint: &str) -> Metadata {
        Metadata {
            issuer: issuer.into(),
            authorization_endpoint: Some(format!("{issuer}/auth")),
            token_endpoint: Some(token_endpoint.into()),
            revocation_endpoint: None,
            device_authorization_endpoint: None,
            introspection_endpoint: None,
            userinfo_endpoint: None,
            code_challenge_methods_supported: None,
            token_endpoint_auth_methods_supported: None,
        }
    }

    #[test]
    fn loopback_endpoints_only_for_an_issuer_on_loopback() {
        let remote = "https://id.example";
        for token in [
            "http://127.0.0.1:8200/token",
            "http://localhost/token",
            "http://[::1]:9/token",
            "https://127.0.0.1/token",
        ] {
            match from_metadata(remote, metadata(remote, token)) {
                Err(DiscoveryError::Invalid { reason, .. }) => {
                    assert!(reason.contains("token_endpoint"), "{reason}");
                    assert!(reason.contains("loopback"), "{reason}");
                }
                other => panic!("{token} from a remote issuer: {other:?}"),
            }
        }
        let device = Metadata {
            device_authorization_endpoint: Some("http://127.0.0.1:1/device".into()),
            ..metadata(remote, "https://id.example/token")
        };
        assert!(from_metadata(remote, device).is_err());
        assert!(from_metadata(remote, metadata(remote, "https://id.example/token")).is_ok());
        // A test server (or an authorization server on the same machine) on loopback.
        let local = "http://127.0.0.1:9000";
        let p = from_metadata(local, metadata(local, "http://127.0.0.1:9000/token")).unwrap();
        assert_eq!(p.token_url.unwrap().as_str(), "http://127.0.0.1:9000/token");
    }
}

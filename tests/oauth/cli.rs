//! `tether oauth login` end to end: the real binary, the real oidc-provider, the real vault.

use crate::require;
use crate::util::oidc::{self, browser_get, OidcOptions, OidcProvider};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tether::vault::{Vault, VaultConfig};

#[tokio::test]
async fn login_with_discovery_stores_the_tokens_in_the_vault() {
    require!(oidc::available(), oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (primary, backup) = (dir.path().join("primary"), dir.path().join("backup"));
    let mut child = Command::new(crate::util::tether_bin())
        .args([
            "oauth",
            "login",
            "--provider",
            "generic",
            "--no-browser",
            "--timeout",
            "60",
        ])
        .args([
            "--issuer",
            oidc.issuer().as_str(),
            "--client-id",
            &oidc.client_id(),
        ])
        .args(["--scope", "openid offline_access"])
        .args(["--into", "studio-test"])
        .arg("--primary")
        .arg(&primary)
        .arg("--backup")
        .arg(&backup)
        .env("TETHER_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "no URL printed");
        if line.starts_with("http") {
            break url::Url::parse(line.trim()).unwrap();
        }
    };
    assert!(url.query_pairs().any(|(k, _)| k == "redirect_uri"));
    let callback = oidc.consent(&url).await;
    let (status, page) = browser_get(&callback).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Done: generic authorized as tester"),
        "{page}"
    );
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut printed = String::new();
    stdout.read_to_string_lossy(&mut printed);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("stored as credential studio-test, generation 1"),
        "{printed}"
    );
    assert!(printed.contains("[redacted]"), "{printed}");

    let (vault, _) = Vault::open(VaultConfig::new(primary, vec![backup])).unwrap();
    let record = vault.get("studio-test").unwrap().expect("stored");
    assert_eq!(record.provider, "generic");
    assert_eq!(record.account.as_deref(), Some("tester"));
    let rt = record.refresh_token.expect("refresh token stored");
    assert!(
        !printed.contains(rt.secret())
            && !String::from_utf8_lossy(&output.stderr).contains(rt.secret())
    );
    // The stored refresh token works.
    tether::oauth::refresh(
        &tether::oauth::http_client(),
        &oidc.provider(),
        &oidc.client(),
        &rt,
    )
    .await
    .unwrap();
}

trait ReadAll {
    fn read_to_string_lossy(&mut self, out: &mut String);
}

impl<R: std::io::Read> ReadAll for BufReader<R> {
    fn read_to_string_lossy(&mut self, out: &mut String) {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(self, &mut buf).unwrap();
        out.push_str(&String::from_utf8_lossy(&buf));
    }
}

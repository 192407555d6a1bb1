//! The real `tether agent serve` process at its edges: SIGTERM with a client holding a
//! half-sent request, running out of file descriptors, and `tether token` against a
//! daemon whose certificate is not the pinned one.

use super::harness::seed;
use crate::companion::support::{have, tether, Daemon};
use crate::require;
use std::sync::Arc;
use std::time::Duration;
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::{Record, Vault, VaultConfig};
use tokio::io::AsyncWriteExt;

const BODY: &str = r#"
[[credentials]]
name = "youtube"
provider = "generic"
client_id = "cid"
refresh_interval = "1h"
[credentials.overrides]
auth_url = "http://127.0.0.1:9/auth"
token_url = "http://127.0.0.1:9/token"
"#;

fn record() -> Record {
    let mut r = Record::new("youtube", "generic");
    r.access_token = Some(AccessToken::new("at-seeded"));
    r.refresh_token = Some(RefreshToken::new("rt-seeded"));
    r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    r
}

fn fingerprint(dir: &std::path::Path) -> String {
    tether::agent::access::tls::existing_fingerprint(&dir.join("state"))
        .expect("the daemon made its cert")
        .to_hex()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_held_half_sent_request_exits_within_the_grace_and_keeps_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), record());
    // A long request deadline, so only the shutdown grace can end the held request.
    let body = format!("shutdown_grace = \"2s\"\nrequest_timeout = \"120s\"\n{BODY}");
    let mut d = Daemon::start_in(dir, &body, None).await;
    let cfg = tether::pin::pinned_tls_config(
        &tether::agent::access::tls::existing_fingerprint(&d.dir.path().join("state")).unwrap(),
    )
    .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let addr = d.url.trim_start_matches("https://").to_string();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // Two hostile clients: one stops inside the body, one inside the headers.
    let mut held = Vec::new();
    for half in [
        &b"POST /v1/pair HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"secr"[..],
        &b"GET /v1/health HTTP/1.1\r\nHost: loc"[..],
    ] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut s = connector.connect(name.clone(), tcp).await.unwrap();
        s.write_all(half).await.unwrap();
        s.flush().await.unwrap();
        held.push(s);
    }
    // The daemon has read what was sent: nothing is left unread on its side of either
    // connection.
    for s in &held {
        crate::util::wait_read_by_peer(s.get_ref().0, Duration::from_secs(10)).await;
    }

    // SAFETY: kill(2) with a pid we spawned and still hold; no memory is involved.
    let rc = unsafe { libc::kill(d.proc.pid() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    // Grace 2 s; generous bound for a loaded machine, far below systemd's 30 s.
    let code = d.proc.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(code, 0, "{}", d.proc.stderr());
    assert!(
        d.proc.stderr().contains("shutdown grace"),
        "{}",
        d.proc.stderr()
    );
    drop(held);

    // The vault is intact: every location has the seeded generation, nothing to repair.
    let cfg = VaultConfig::new(
        d.dir.path().join("state/vault"),
        vec![d.dir.path().join("backup")],
    );
    let (vault, report) = Vault::open(cfg).unwrap();
    assert!(
        report.repairs.is_empty() && report.problems.is_empty(),
        "{report:#?}"
    );
    let r = vault.get("youtube").unwrap().unwrap();
    assert_eq!(r.refresh_token.unwrap().secret(), "rt-seeded");
}

/// Raises this process's soft file-descriptor limit to its hard limit (the test opens
/// over a thousand sockets).
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a plain struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        lim.rlim_cur as u64
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_logs_a_bounded_number_of_lines() {
    require!(have("prlimit"), "prlimit (util-linux)");
    require!(
        raise_nofile() >= 2048,
        "a hard file-descriptor limit of 2048 or more"
    );
    // The daemon gets 64 descriptors: a few dozen idle connections exhaust them.
    let d = Daemon::start_in(tempfile::tempdir().unwrap(), BODY, Some(64)).await;
    let addr: std::net::SocketAddr = d.url.trim_start_matches("https://").parse().unwrap();
    let connects = (0..1100).map(|_| async move {
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
            .await
            .ok()
            .and_then(Result::ok)
    });
    let idle: Vec<_> = futures_util::future::join_all(connects)
        .await
        .into_iter()
        .flatten()
        .collect();
    // Those beyond the listen backlog stay in SYN-sent and time out; that is fine.
    assert!(idle.len() > 100, "only {} connections opened", idle.len());
    // The daemon runs out of descriptors (the idle connections hold them until the TLS
    // handshake timeout) and says so: wait for that first line.
    let failures = |log: &str| log.lines().filter(|l| l.contains("accept failed")).count();
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while failures(&d.proc.stderr()) == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "EMFILE was not provoked:\n{}",
            d.proc.stderr()
        );
        tokio::time::sleep(crate::util::POLL).await;
    }
    // Then watch the log for 6 s while accepts keep failing: the pause is what is tested
    // (a line per interval, not per failed accept).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = d.proc.stderr();
    let lines = failures(&log);
    assert!(
        lines <= 2,
        "{lines} accept-failure lines in the 6 s after the first (one per interval expected):\n{log}"
    );
    let first = log.lines().find(|l| l.contains("accept failed")).unwrap();
    assert!(first.contains("file descriptors"), "{first}");
    drop(idle);
}

#[tokio::test]
async fn tether_token_names_a_pin_mismatch_like_the_companion() {
    let d = Daemon::start_in(tempfile::tempdir().unwrap(), BODY, None).await;
    let wrong = "ab".repeat(32);
    let out = tether(d.dir.path(), &[("TETHER_AGENT_TOKEN", "tth_agent_x")])
        .args(["token", "youtube", "--url", &d.url, "--fingerprint", &wrong])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("does not match the pinned fingerprint")
            && err.contains(&wrong)
            && err.contains(&fingerprint(d.dir.path())),
        "{err}"
    );
    assert!(!err.contains("is `tether agent serve` running"), "{err}");
}

#[tokio::test]
async fn the_companion_config_says_the_token_is_in_the_file_when_it_is() {
    use tether::companion::{pair::PairOptions, secrets::Backend, Companion};
    let d = Daemon::start_in(tempfile::tempdir().unwrap(), BODY, None).await;
    let home = tempfile::tempdir().unwrap();
    let companion = Companion::open(home.path(), Backend::File);
    companion
        .pair(&d.pairing_code(), &PairOptions::default(), &mut |_| false)
        .await
        .expect("pairing works");
    let text = std::fs::read_to_string(companion.config_path()).unwrap();
    let file = companion.secrets().file().display().to_string();
    assert!(
        text.contains(&file) && text.contains("studio"),
        "the header names the fallback file:\n{text}"
    );
    assert!(!text.contains("OS keyring"), "{text}");
}

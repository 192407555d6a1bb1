//! Helpers shared by the integration tests: temp dirs, the `tether` binary, real servers.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of the `tether` binary built for these tests.
pub fn tether_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tether"))
}

/// True when the run must not skip tests that need system parts (CI sets it).
pub fn strict() -> bool {
    std::env::var_os("TETHER_TEST_STRICT").is_some_and(|v| v == "1")
}

/// The running test's name: libtest runs each test on a thread named after it (a tokio
/// test's body runs there too, inside `block_on`).
pub fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "<unnamed test>".to_string(),
    }
}

/// Says that the current test (or a part of it, when the caller goes on) cannot run here
/// and why, where it cannot be missed: a `SKIPPED <test>: <why>` line straight to the process's stderr (libtest
/// captures `eprintln!`, and shows captured output only for failures), and the same line
/// appended to the file named by `TETHER_TEST_SKIPS`, which `scripts/test.sh` reads to
/// fail the run. In strict mode (`TETHER_TEST_STRICT=1`, set by `scripts/test.sh`) it
/// then fails the test with that line.
pub fn skipped(why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {}: {why}\n", current_test());
    // Not `eprint!`: a direct write to the stderr handle is not captured.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("TETHER_TEST_SKIPS") {
        // One `write` per line on an O_APPEND file: lines from parallel tests do not mix.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            panic!(
                "could not record the skip in {}: {e}; {}",
                std::path::Path::new(&path).display(),
                line.trim_end()
            );
        }
    }
    if strict() {
        panic!(
            "{} (TETHER_TEST_STRICT=1: every system part the suite needs must be here)",
            line.trim_end()
        );
    }
}

/// Skips the current test with a visible `SKIPPED <test>: <why>` line (see [`skipped`]),
/// or fails it in strict mode (CI), where every system part the suite needs is installed
/// and running.
#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            $crate::util::skipped(&::std::string::ToString::to_string(&$why));
            return;
        }
    };
}

/// How often [`eventually`] looks.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Polls `probe` every [`POLL`] until it returns `Some`, and returns that; fails the test
/// naming `what` if `within` passes first. The probe runs on the test's runtime between
/// sleeps, so tasks of the same runtime (an in-process daemon) keep running meanwhile.
pub async fn eventually<T>(
    within: std::time::Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The send and receive queues (bytes) of the established TCP socket at `local` connected
/// to `remote` on this machine, from `/proc/net/tcp` and `/proc/net/tcp6`; `None` when
/// there is no such socket. For a socket of another process on loopback, a receive queue of 0 says
/// that process has read everything that reached it.
pub fn tcp_queues(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<(u64, u64)> {
    let port = |field: &str| {
        field
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx_queue:rx_queue ...; st 01 is ESTABLISHED.
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5
                || f[3] != "01"
                || port(f[1]) != Some(local.port())
                || port(f[2]) != Some(remote.port())
            {
                continue;
            }
            let (tx, rx) = f[4].split_once(':')?;
            return Some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ));
        }
    }
    None
}

/// Waits until the process at the other end of `client` (a TCP connection on loopback)
/// has read every byte sent on it: the client's send queue is empty (the peer's kernel has
/// them) and so is the peer's receive queue (the peer read them).
pub async fn wait_read_by_peer(client: &tokio::net::TcpStream, within: std::time::Duration) {
    let (me, peer) = (
        client.local_addr().expect("local address"),
        client.peer_addr().expect("peer address"),
    );
    eventually(within, "the peer reads what was sent", || {
        let (sent_unacked, _) = tcp_queues(me, peer)?;
        let (_, unread) = tcp_queues(peer, me)?;
        (sent_unacked == 0 && unread == 0).then_some(())
    })
    .await
}

pub mod browser;
pub mod oidc;
pub mod openbao;

/// Held by every test that clicks on desktop notifications: they share one notification
/// server, and `dunstctl action 0` acts on whichever notification is shown first.
pub static DESKTOP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes [`DESKTOP`] and clears the notification server, so `dunstctl action 0` can only
/// reach the caller's own notification.
pub async fn desktop_session() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = DESKTOP.lock().await;
    let _ = std::process::Command::new("dunstctl")
        .arg("close-all")
        .status();
    guard
}

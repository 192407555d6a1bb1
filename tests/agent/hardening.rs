//! Hardening of the daemon: revocation ends open event streams, a rotation is never spent
//! when it cannot be stored, and a rotation cut by a crash is never replayed blindly.

use super::harness::TestAgent;
use std::time::Duration;
use tether::agent::access::auth::Role;

#[tokio::test]
async fn revoking_a_device_ends_its_open_event_stream_within_a_heartbeat() {
    let a = TestAgent::start("heartbeat_interval = \"1s\"", "").await;
    let (id, token) = a
        .daemon
        .auth()
        .create_token(Role::Device, "stolen laptop")
        .unwrap();
    let resp = a
        .req(reqwest::Method::GET, "/v1/events", Some(token.secret()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = super::harness::EventStream::from_response(resp);
    // The stream is alive: a heartbeat arrives.
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a heartbeat within 5 s");
    // `tether agent revoke` from another process: a second store on the same directory.
    let other = tether::agent::access::auth::AuthStore::open(&a.dir.path().join("state")).unwrap();
    assert!(other.revoke(&id).unwrap());
    tokio::time::timeout(Duration::from_secs(3), stream.closed())
        .await
        .expect("the stream ends within one heartbeat of the revocation");
    // And the token opens no new one.
    let again = a
        .req(reqwest::Method::GET, "/v1/events", Some(token.secret()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
}

/// Fills the filesystem of `dir` to the last byte.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // The last partial block.
    while let Ok(n) = f.write(&[0u8; 64]) {
        if n == 0 {
            break;
        }
    }
}

#[tokio::test]
async fn with_every_location_full_a_rotating_token_is_not_spent_and_a_kill_loses_nothing() {
    use super::restart::{bootstrap_running, free_port, spawn};
    use crate::util::oidc::{OidcOptions, OidcProvider};
    crate::require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    let dir = tempfile::tempdir().unwrap();
    let primary = crate::vault::Tmpfs::mount(&dir.path().join("state").join("vault"), "256k");
    crate::require!(
        primary.is_some(),
        "mounting a tmpfs needs root (mount -t tmpfs)"
    );
    let primary = primary.expect("checked by require!");
    let backup = crate::vault::Tmpfs::mount(&dir.path().join("backup"), "256k")
        .expect("a second tmpfs mounts when the first did");
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 20,
        ..Default::default()
    });
    let port = free_port();
    let text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        + &super::harness::oidc_credential("yt", &oidc, "probe_interval = \"1h\"");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = tether::agent::access::auth::AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "test").unwrap();
    let (_, agent) = store.create_token(Role::Agent, "test").unwrap();
    let (device, agent) = (device.secret().to_string(), agent.secret().to_string());
    let mut d = spawn(&config);
    bootstrap_running(&d, &device, "yt", &oidc).await;
    let refreshes = oidc.refresh_count().await;

    // Every vault location fills up to the last byte.
    fill(&primary.path);
    fill(&backup.path);
    // The keep-fresh refresh falls due (half of the 20 s lifetime) and is refused before
    // anything is sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let c = loop {
        let c = d.health(&device).await.credentials.remove(0);
        if c.state == tether::protocol::CredentialState::Degraded {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never degraded: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let e = c.last_error.expect("an error");
    assert!(
        e.description.contains("no vault location has room"),
        "{e:?}"
    );
    assert!(e.description.contains("not spent"), "{e:?}");
    assert_eq!(oidc.refresh_count().await, refreshes, "no refresh was sent");
    // The cached access token is served while it lasts.
    let r = d
        .req(
            reqwest::Method::GET,
            "/v1/credentials/yt/access-token",
            &agent,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // kill -9 now, free the space, start again: the stored refresh token still works.
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    std::fs::remove_file(primary.path.join("filler")).unwrap();
    std::fs::remove_file(backup.path.join("filler")).unwrap();
    let d = spawn(&config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = d.health(&device).await.credentials.remove(0);
        if c.state == tether::protocol::CredentialState::Ok
            && oidc.refresh_count().await > refreshes
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ok after the restart: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        oidc.counters().await.grants_revoked,
        0,
        "no reuse was ever detected"
    );
    drop(d);
}

#[tokio::test]
async fn kill_9_during_rotations_never_loses_a_credential_silently() {
    use super::restart::{bootstrap_running, free_port, spawn};
    use crate::util::oidc::{OidcOptions, OidcProvider};
    use tether::protocol::CredentialState;
    crate::require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    let kills: usize = std::env::var("TETHER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // Two-second tokens: each credential is refreshed (and rotated) every second, so kills
    // land in every phase of a rotation. Reuse detection is on at the provider.
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 2,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let names = ["r0", "r1", "r2"];
    let mut text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    for n in names {
        text.push_str(&super::harness::oidc_credential(
            n,
            &oidc,
            "probe_interval = \"1h\"",
        ));
    }
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = tether::agent::access::auth::AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "test").unwrap();
    let device = device.secret().to_string();
    let mut d = spawn(&config);
    for n in names {
        bootstrap_running(&d, &device, n, &oidc).await;
    }
    let rotations0 = oidc.refresh_count().await;
    let (mut told, mut silent) = (0usize, Vec::new());
    let mut rng = rand::thread_rng();
    for kill in 0..kills {
        let delay = rand::Rng::gen_range(&mut rng, 100..1200);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        d.child.kill().unwrap(); // SIGKILL
        d.child.wait().unwrap();
        drop(d);
        d = spawn(&config);
        // Wait until every credential's first check (and any cut rotation) is resolved.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let creds = loop {
            let h = d.health(&device).await;
            if h.credentials
                .iter()
                .all(|c| c.state != CredentialState::Unchecked)
            {
                break h.credentials;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "checks never finished: {h:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for c in creds {
            if c.state != CredentialState::Dead {
                continue;
            }
            let code = c
                .last_error
                .as_ref()
                .map(|e| e.code.clone())
                .unwrap_or_default();
            if code == "rotation_interrupted" {
                told += 1;
            } else {
                silent.push(format!("kill {kill}: {} {:?}", c.name, c.last_error));
            }
            // The owner re-authorizes, and the torture goes on.
            bootstrap_running(&d, &device, &c.name, &oidc).await;
        }
    }
    let rotations = oidc.refresh_count().await - rotations0;
    let counters = oidc.counters().await;
    println!(
        "rotation crash test: {kills} kills, {rotations} rotations, {} credentials lost: {told} told on the next start (rotation cut inside the provider round trip + fsync window), {} silent; grants revoked by reuse detection: {}",
        told + silent.len(),
        silent.len(),
        counters.grants_revoked
    );
    assert!(silent.is_empty(), "silent losses: {silent:#?}");
    assert_eq!(
        counters.grants_revoked, 0,
        "a spent refresh token was presented again (reuse detection revoked a grant)"
    );
    assert!(
        rotations as usize >= kills / 2,
        "too few rotations to test anything: {rotations}"
    );
}

#[tokio::test]
async fn wiped_truncated_and_corrupted_outputs_are_restored_at_once_with_one_notice_per_file() {
    use crate::oauth::canned::{Answer, Canned};
    let canned = Canned::start();
    canned.route(
        "/token",
        Answer::json(
            200,
            r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}"#,
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("agent-home");
    std::fs::create_dir_all(&out).unwrap();
    let files = [
        out.join("token.json"),
        out.join("authorized_user.json"),
        out.join("youtube.env"),
    ];
    let body = format!(
        r#"
[[credentials]]
name = "yt"
provider = "generic"
client_id = "public-client"
[credentials.overrides]
auth_url = "{auth}"
token_url = "{token}"
[[credentials.outputs]]
path = "{f0}"
format = "token_json"
[[credentials.outputs]]
path = "{f1}"
format = "authorized_user"
[[credentials.outputs]]
path = "{f2}"
format = "env"
access_var = "YT_ACCESS"
refresh_var = "YT_REFRESH"
"#,
        auth = canned.url("/auth"),
        token = canned.url("/token"),
        f0 = files[0].display(),
        f1 = files[1].display(),
        f2 = files[2].display(),
    );
    // The periodic check is an hour away: only the watch can restore anything here.
    let a = TestAgent::start_in(
        dir,
        "vault_check_interval = \"1h\"\nheartbeat_interval = \"1s\"",
        &body,
        |d| {
            let mut r = tether::vault::Record::new("yt", "generic");
            r.refresh_token = Some(tether::secret::RefreshToken::new("rt-0"));
            super::harness::seed(d, r);
        },
    )
    .await;
    a.wait_state(
        "yt",
        tether::protocol::CredentialState::Ok,
        Duration::from_secs(10),
    )
    .await;
    // The start refresh re-renders every output (rt-0 became rt-1): wait until each holds
    // it, then read what they hold.
    let good: Vec<Vec<u8>> = crate::util::eventually(
        Duration::from_secs(10),
        "every output rendered from the start refresh",
        || {
            let now: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
            let rendered = now.len() == files.len()
                && now
                    .iter()
                    .all(|b| String::from_utf8_lossy(b).contains("rt-1"));
            rendered.then_some(now)
        },
    )
    .await;
    let mut events = a.events().await;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                match events.next().await {
                    tether::protocol::Event::VaultChanged { vault, .. } => {
                        if let Some(r) = vault.last_repair {
                            seen.lock().unwrap().push(r);
                        }
                    }
                    // Marks the stream as live (cleared before the first wipe).
                    tether::protocol::Event::Heartbeat { .. } => {
                        seen.lock().unwrap().push(String::new())
                    }
                    _ => {}
                }
            }
        })
    };
    // The stream is live once its first heartbeat arrived (events sent before the
    // subscription reached the daemon would be missed).
    let hb = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().is_empty() && tokio::time::Instant::now() < hb {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen.lock().unwrap().clear();
    let mut worst = Duration::ZERO;
    for round in 0..3 {
        for (f, g) in files.iter().zip(&good) {
            match round {
                0 => std::fs::write(f, b"").unwrap(),
                1 => std::fs::remove_file(f).unwrap(),
                _ => std::fs::write(f, b"{ garbage").unwrap(),
            }
            let t = std::time::Instant::now();
            loop {
                if std::fs::read(f).ok().as_ref() == Some(g) {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(1),
                    "{} not restored within 1 s (round {round})",
                    f.display()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            worst = worst.max(t.elapsed());
        }
    }
    println!("wiped outputs restored; slowest {worst:?}");
    // One notice per file, however often it was wiped within the hour.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.is_empty())
        .count()
        < files.len()
        && tokio::time::Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A wrongly sent second notice would have been published before the next heartbeat
    // tick; two heartbeats after this point (the positive signal, on the same ordered
    // stream, a tick apart) mean everything published before the first of them has been
    // read, so a second notice would be in `seen` now.
    let from = seen.lock().unwrap().len();
    crate::util::eventually(
        Duration::from_secs(5),
        "two heartbeats after the notices",
        || {
            let later = seen.lock().unwrap()[from..]
                .iter()
                .filter(|r| r.is_empty())
                .count();
            (later >= 2).then_some(())
        },
    )
    .await;
    reader.abort();
    let mut notices = std::collections::BTreeMap::<String, usize>::new();
    for r in seen.lock().unwrap().iter().filter(|r| !r.is_empty()) {
        *notices.entry(r.clone()).or_default() += 1;
    }
    for f in &files {
        let name = f.display().to_string();
        let n: usize = notices
            .iter()
            .filter(|(k, _)| k.contains(&name))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(n, 1, "{name}: {notices:#?}");
    }
    let line = notices.keys().next().unwrap();
    assert!(
        line.contains("was wiped or damaged at") && line.contains("restored from the vault"),
        "{line}"
    );
}

#[tokio::test]
async fn more_idle_connections_than_the_cap_do_not_lock_out_the_agent() {
    use super::restart::{free_port, spawn};
    use tether::agent::access::conn_limit::MAX_CONNECTIONS;
    // This test holds more sockets than the default soft limit of 1,024 descriptors.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    crate::require!(
        lim.rlim_cur >= 2048,
        "needs a file-descriptor limit of at least 2048"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let body = r#"
[[credentials]]
name = "yt"
provider = "generic"
client_id = "c"
refresh_interval = "6h"
[credentials.overrides]
auth_url = "http://127.0.0.1:9/auth"
token_url = "http://127.0.0.1:9/token"
"#;
    let text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        + body;
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let mut r = tether::vault::Record::new("yt", "generic");
    r.access_token = Some(tether::secret::AccessToken::new("at-cached"));
    r.refresh_token = Some(tether::secret::RefreshToken::new("rt"));
    super::harness::seed(dir.path(), r);
    let store = tether::agent::access::auth::AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, agent) = store.create_token(Role::Agent, "uploader").unwrap();
    let d = spawn(&config);
    let pid = d.child.id();
    let descriptors = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = descriptors();

    // 1,100 connections that never say a word (nor start TLS).
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_nonblocking(true).unwrap();
                idle.push(s)
            }
            Err(e) => panic!("connect {}: {e}", idle.len()),
        }
    }
    // The daemon has taken every connection off its listen queue: each one is either held
    // (a descriptor more than before) or closed by the daemon (its client reads the end).
    // Whatever the cap does, only then does the descriptor count below say anything.
    let mut closed = vec![false; idle.len()];
    let (ended, held) = crate::util::eventually(
        Duration::from_secs(60),
        "the daemon accepts every connection",
        || {
            for (s, c) in idle.iter().zip(closed.iter_mut()) {
                if !*c {
                    let mut b = [0u8; 1];
                    *c = match s.peek(&mut b) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                        // The end, a reset, or bytes (which a connection that never sent
                        // a ClientHello cannot get): the daemon has it.
                        _ => true,
                    };
                }
            }
            let ended = closed.iter().filter(|c| **c).count();
            let held = descriptors().saturating_sub(before);
            (ended + held >= idle.len()).then_some((ended, held))
        },
    )
    .await;
    let fds = descriptors();
    println!(
        "daemon holds {fds} descriptors with {} idle connections open at it ({ended} closed by the daemon, {held} descriptors more than before them)",
        idle.len()
    );
    assert!(
        fds <= MAX_CONNECTIONS + 64,
        "the daemon holds {fds} descriptors: the cap did not bite"
    );
    // The agent still gets its token.
    let resp = d
        .req(
            reqwest::Method::GET,
            "/v1/credentials/yt/access-token",
            agent.secret(),
        )
        .send()
        .await
        .expect("the agent's request is answered");
    assert_eq!(resp.status(), 200);
    let t: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(t["access_token"], "at-cached");
    drop(idle);
}

#[tokio::test]
async fn a_device_cannot_force_refresh_after_refresh_of_a_rotating_token() {
    use crate::util::oidc::{OidcOptions, OidcProvider};
    crate::require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let a = TestAgent::start("", &super::harness::oidc_credential("x", &oidc, "")).await;
    a.bootstrap("x", &oidc).await;
    let before = oidc.refresh_count().await;
    for _ in 0..10 {
        let h: tether::protocol::CredentialHealth =
            a.post_json("/v1/credentials/x/check", None).await;
        assert_eq!(h.state, tether::protocol::CredentialState::Ok);
    }
    assert_eq!(
        oidc.refresh_count().await,
        before + 1,
        "ten forced checks in a row spend the rotating token once"
    );
}

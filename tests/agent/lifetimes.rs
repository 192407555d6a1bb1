//! Detection under real token lifetimes, on the wire: access tokens that expire during the
//! test (seconds, standing in for Google's hour), rotation with reuse detection, a strict
//! introspection endpoint, the agent's `rejected` report, the refresh-ahead clamp, and
//! providers that omit `expires_in` and `error_description`.

use super::harness::{oidc_credential, seed, TestAgent};
use super::restart::{bootstrap_running, spawn};
use crate::oauth::canned::{Answer, Canned};
use crate::require;
use crate::util;
use crate::util::oidc::{OidcOptions, OidcProvider};
use reqwest::Method;
use std::time::Duration;
use tether::agent::access::auth::{AuthStore, Role};
use tether::protocol::{CredentialState, RejectedReply};
use tokio::time::Instant;

/// utime + stime of a process, in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat has a command") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// A counter from the daemon's `/metrics` (summed over labels matching `filter`).
fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn ten_second_tokens_a_revocation_after_six_lifetimes_is_dead_within_the_probe_interval() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 10,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = super::restart::free_port();
    // The default schedule (keep_fresh, 2-minute refresh_ahead, 6-hour refresh tests) with
    // a 15-second probe.
    let text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        + &oidc_credential("yt", &oidc, "probe_interval = \"15s\"");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "test").unwrap();
    let device = device.secret().to_string();
    let d = spawn(&config);
    bootstrap_running(&d, &device, "yt", &oidc).await;
    let pid = d.child.id();

    // Six token lifetimes (and a bit): the credential stays ok, the access token is kept
    // fresh, and nothing spins.
    let cpu0 = cpu_seconds(pid);
    let started = Instant::now();
    let refreshes0 = oidc.refresh_count().await;
    while started.elapsed() < Duration::from_secs(62) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let h = d.health(&device).await;
        let c = &h.credentials[0];
        assert_eq!(c.state, CredentialState::Ok, "{c:?}");
    }
    let cpu = cpu_seconds(pid) - cpu0;
    let elapsed = started.elapsed().as_secs_f64();
    let refreshes = oidc.refresh_count().await - refreshes0;
    let metrics = d
        .req(reqwest::Method::GET, "/metrics", &device)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let wakeups = metric(&metrics, "tether_checker_wakeups_total", "yt");
    println!(
        "ten-second tokens over {elapsed:.0} s: daemon CPU {cpu:.2} s ({:.2} % of a core), {refreshes} refreshes at the provider, {wakeups} checker wake-ups",
        cpu / elapsed * 100.0
    );
    // Refreshed ahead of each expiry (the margin is clamped to half of the 10 s lifetime).
    assert!(
        (6..=20).contains(&refreshes),
        "{refreshes} refreshes in a minute"
    );
    // A handful of wake-ups per probe interval, not the old ~1,500 a second.
    assert!(wakeups < 60.0, "{wakeups} wake-ups in a minute");
    let cadence = d.health(&device).await.credentials[0]
        .cadence
        .clone()
        .unwrap();
    assert_eq!(cadence.mode, "probe", "{cadence:?}");

    // The grant is revoked at the provider: dead within the probe interval, whatever phase
    // of the token's life it is in.
    oidc.revoke_all().await;
    let revoked = Instant::now();
    loop {
        let c = d.health(&device).await.credentials.remove(0);
        if c.state == CredentialState::Dead {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(17),
            "still {} {:?} after the revocation",
            c.state,
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "revocation → dead in {:.1} s (health's worst case {} s)",
        revoked.elapsed().as_secs_f64(),
        cadence.worst_case_detection_secs
    );
    assert!(revoked.elapsed() <= Duration::from_secs(cadence.worst_case_detection_secs + 1));
}

#[tokio::test]
async fn discovery_never_picks_introspection_for_a_public_client() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        strict_introspection: true,
        ..Default::default()
    });
    let body = format!(
        "\n[[credentials]]\nname = \"gen\"\nprovider = \"generic\"\nissuer = \"{}\"\nclient_id = \"{}\"\nscopes = [\"openid\", \"offline_access\"]\nprobe_interval = \"15s\"\n",
        oidc.issuer().as_str().trim_end_matches('/'),
        oidc.client_id()
    );
    let a = TestAgent::start("", &body).await;
    let h = a.bootstrap("gen", &oidc).await;
    let cadence = h.cadence.expect("cadence");
    assert!(
        cadence
            .probe
            .as_deref()
            .unwrap_or("")
            .starts_with("userinfo"),
        "{cadence:?}"
    );
    let userinfo = oidc.counters().await.userinfo;
    let deadline = Instant::now() + Duration::from_secs(40);
    while oidc.counters().await.userinfo < userinfo + 1 {
        assert!(Instant::now() < deadline, "no userinfo probe ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let c = oidc.counters().await;
    assert_eq!(c.introspections_refused, 0, "introspection was never tried");
    let cred = a.cred("gen").await;
    assert_eq!(cred.state, CredentialState::Ok);
    assert_eq!(cred.last_probe.unwrap().result, "alive");
}

#[tokio::test]
async fn a_probe_that_cannot_work_falls_back_to_refresh_tests_and_says_so() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        strict_introspection: true,
        ..Default::default()
    });
    // The owner configured introspection for a client without a secret; the server refuses.
    let a = TestAgent::start(
        "",
        &oidc_credential("yt", &oidc, "probe_interval = \"15s\""),
    )
    .await;
    a.bootstrap("yt", &oidc).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let c = loop {
        let c = a.cred("yt").await;
        if c.last_probe
            .as_ref()
            .is_some_and(|p| p.result == "misconfigured")
        {
            break c;
        }
        assert!(Instant::now() < deadline, "the probe never ran: {c:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Not silently degraded: the credential is ok, and health says how it is checked now.
    assert_eq!(c.state, CredentialState::Ok, "{c:?}");
    let cadence = c.cadence.unwrap();
    assert_eq!(cadence.mode, "refresh_tests", "{cadence:?}");
    let note = cadence.note.unwrap();
    assert!(note.contains("cannot work here"), "{note}");
    assert!(note.contains("401"), "{note}");
    assert_eq!(cadence.probe_interval_secs, None);
    // Refused once for the probe (and once at re-authorization, when the daemon asked for
    // the account's name); it is not asked again.
    let refused = oidc.counters().await.introspections_refused;
    assert!(refused >= 1);
    // The pause is what is tested: after the probe ran (the positive signal above), a
    // whole probe interval (15 s) and more passes without another introspection.
    tokio::time::sleep(Duration::from_secs(17)).await;
    assert_eq!(oidc.counters().await.introspections_refused, refused);
    // `tether status` shows the note under the credential.
    let report = tether::companion::status::StatusReport::from_results(vec![(
        "studio".into(),
        a.base.clone(),
        Ok(a.health().await),
    )]);
    let text = report.render(false, chrono::Local::now());
    assert!(text.contains("checked by refresh tests"), "{text}");
}

async fn post_rejected(a: &TestAgent, name: &str) -> RejectedReply {
    let resp = a
        .req(
            Method::POST,
            &format!("/v1/credentials/{name}/rejected"),
            Some(&a.agent),
        )
        .json(&serde_json::json!({"status": 401, "detail": "Request had invalid authentication credentials."}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn rejected_with_a_live_grant_hands_out_a_new_token_and_a_flood_refreshes_once() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        ..Default::default()
    });
    let a = TestAgent::start("", &oidc_credential("yt", &oidc, "")).await;
    a.bootstrap("yt", &oidc).await;
    let (_, first) = a.access_token("yt").await;
    let first = first["access_token"].as_str().unwrap().to_string();
    let before = oidc.refresh_count().await;
    let reply = post_rejected(&a, "yt").await;
    assert_eq!(reply.credential.state, CredentialState::Ok);
    let token = reply.token.expect("a fresh token");
    assert_ne!(token.access_token.secret(), first, "not the refused token");
    assert_eq!(oidc.refresh_count().await, before + 1);
    // The broker serves the new one, and the provider accepts it.
    let (_, now) = a.access_token("yt").await;
    assert_eq!(
        now["access_token"].as_str().unwrap(),
        token.access_token.secret()
    );
    let ok = tether::oauth::http_client()
        .get(oidc.issuer().join("/me").unwrap())
        .bearer_auth(token.access_token.secret())
        .send()
        .await
        .unwrap()
        .status();
    assert!(ok.is_success(), "{ok}");

    // A flood of reports (every worker of the agent saw a 401): one refresh, not fifty —
    // with rotation on, fifty would be a reuse and the grant would be revoked. First the
    // daemon's own limit on rejected reports passes (time is what that limit counts).
    tokio::time::sleep(tether::agent::keep_alive::broker::REJECTED_MIN_INTERVAL).await;
    let before = oidc.refresh_count().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let a = (a.base.clone(), a.http.clone(), a.agent.clone());
        tasks.push(tokio::spawn(async move {
            let r =
                a.1.post(format!("{}/v1/credentials/yt/rejected", a.0))
                    .bearer_auth(&a.2)
                    .send()
                    .await
                    .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<RejectedReply>().await.unwrap()
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.credential.state, CredentialState::Ok);
        tokens.insert(r.token.expect("token").access_token.secret().to_string());
    }
    assert_eq!(
        oidc.refresh_count().await,
        before + 1,
        "one refresh for the flood"
    );
    assert_eq!(tokens.len(), 1, "everyone got the same new token");
    assert_eq!(
        oidc.counters().await.grants_revoked,
        0,
        "no reuse was detected"
    );
}

#[tokio::test]
async fn rejected_with_a_revoked_grant_is_dead_in_the_reply() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(Default::default());
    // A slow probe: only the agent's report can find the revocation quickly.
    let a = TestAgent::start("", &oidc_credential("yt", &oidc, "probe_interval = \"1h\"")).await;
    a.bootstrap("yt", &oidc).await;
    let fp = a.daemon.tls().unwrap().fingerprint.to_hex();
    // The shell form prints a token while the grant lives.
    let cli = |rejected: bool| {
        let mut cmd = tokio::process::Command::new(util::tether_bin());
        cmd.args(["token", "yt", "--url", &a.base, "--fingerprint", &fp])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TETHER_AGENT_TOKEN", &a.agent);
        if rejected {
            cmd.arg("--rejected");
        }
        cmd.output()
    };
    let out = cli(true).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());

    oidc.revoke_all().await;
    // The report above was a rejected report too: the daemon's limit on them (a time)
    // passes before the next one counts.
    tokio::time::sleep(tether::agent::keep_alive::broker::REJECTED_MIN_INTERVAL).await;
    let mut events = a.events().await;
    let t = Instant::now();
    let reply = post_rejected(&a, "yt").await;
    println!("rejected report → dead in {:?}", t.elapsed());
    assert_eq!(reply.credential.state, CredentialState::Dead, "{reply:?}");
    assert!(reply.token.is_none());
    events
        .wait_for("yt", CredentialState::Dead, Duration::from_secs(2))
        .await;
    // The broker refuses from now on, and the shell form says what to do.
    assert_eq!(a.access_token("yt").await.0, 409);
    let out = cli(true).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dead") && err.contains("tether reauth"),
        "{err}"
    );
}

#[tokio::test]
async fn refresh_ahead_is_clamped_for_short_tokens() {
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        access_token_ttl_secs: 60,
        ..Default::default()
    });
    // Default refresh_ahead (2 minutes) on 60-second tokens.
    let a = TestAgent::start("", &oidc_credential("yt", &oidc, "keep_fresh = false")).await;
    let h = a.bootstrap("yt", &oidc).await;
    let before = oidc.refresh_count().await;
    for _ in 0..5 {
        assert_eq!(a.access_token("yt").await.0, 200);
    }
    assert_eq!(
        oidc.refresh_count().await,
        before,
        "a 60-second token is served for its first 30 seconds"
    );
    assert_eq!(
        a.cred("yt").await.generation,
        h.generation,
        "no new generations"
    );
}

#[tokio::test]
async fn a_provider_without_expires_in_or_error_description() {
    let canned = Canned::start();
    // No expires_in, no scope, no refresh_token in the answer (a public client's refresh).
    canned.route(
        "/token",
        Answer::json(200, r#"{"access_token":"at-1","token_type":"Bearer"}"#),
    );
    let body = format!(
        r#"
[[credentials]]
name = "tok"
provider = "generic"
client_id = "public-client"
[credentials.overrides]
auth_url = "{auth}"
token_url = "{token}"
access_token_lifetime_secs = 600
"#,
        auth = canned.url("/auth"),
        token = canned.url("/token"),
    );
    let dir = tempfile::tempdir().unwrap();
    let a = TestAgent::start_in(dir, "", &body, |d| {
        let mut r = tether::vault::Record::new("tok", "generic");
        r.refresh_token = Some(tether::secret::RefreshToken::new("rt-0"));
        seed(d, r);
    })
    .await;
    let c = a
        .wait_state("tok", CredentialState::Ok, Duration::from_secs(10))
        .await;
    assert_eq!(c.generation, 2, "the start refresh stored a new generation");
    let (status, t) = a.access_token("tok").await;
    assert_eq!(status, 200, "{t}");
    // The assumed lifetime: the broker knows when to stop serving it.
    let exp: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(t["expires_at"].clone()).expect("an expiry, not null");
    let left = (exp - chrono::Utc::now()).num_seconds();
    assert!((590..=600).contains(&left), "{left}");

    // invalid_grant without a description: the code alone, and the fix; no dangling colon.
    canned.route("/token", Answer::json(400, r#"{"error":"invalid_grant"}"#));
    let check = a
        .req(Method::POST, "/v1/credentials/tok/check", Some(&a.device))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200);
    let (status, e) = a.access_token("tok").await;
    assert_eq!(status, 409);
    assert_eq!(
        e["message"].as_str().unwrap(),
        "credential tok on agent studio is dead (invalid_grant); run `tether reauth studio/tok`"
    );
    let report = tether::companion::status::StatusReport::from_results(vec![(
        "studio".into(),
        a.base.clone(),
        Ok(a.health().await),
    )]);
    let text = report.render(false, chrono::Local::now());
    let line = text.lines().find(|l| l.contains("tok")).unwrap();
    assert!(line.contains("invalid_grant"), "{line}");
    assert!(!line.contains("invalid_grant:"), "{line}");
}

#[tokio::test]
async fn a_broker_refresh_after_expiry_is_followed_by_the_checker_not_repeated() {
    // Issue seen against a second authorization server: after the broker refreshed an
    // expired token (50 concurrent requests, one refresh), the checker woke for the probe it
    // had planned, still saw the old, expired token, and spent the rotating refresh token
    // again 3-5 s later. Here the checker sleeps towards a probe 25 s after the grant; the
    // token lives 15 s; the agent's requests come after it expired, before that probe.
    require!(util::oidc::available(), util::oidc::MISSING);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 15,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = super::restart::free_port();
    let text = super::harness::config_head(dir.path(), "")
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        + &oidc_credential("yt", &oidc, "probe_interval = \"25s\"\nkeep_fresh = false");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = AuthStore::open(&dir.path().join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "test").unwrap();
    let (_, agent) = store.create_token(Role::Agent, "test").unwrap();
    let (device, agent) = (device.secret().to_string(), agent.secret().to_string());
    let d = spawn(&config);
    bootstrap_running(&d, &device, "yt", &oidc).await;
    let granted = Instant::now();

    // The first access token has expired.
    tokio::time::sleep_until(granted + Duration::from_secs(16)).await;
    let wakeups = |d: &super::restart::Running| {
        let d = d.req(Method::GET, "/metrics", &device);
        async move {
            let text = d.send().await.unwrap().text().await.unwrap();
            metric(&text, "tether_checker_wakeups_total", "yt")
        }
    };
    let wakeups0 = wakeups(&d).await;
    let refreshes0 = oidc.refresh_count().await;
    let asked = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let r = d.req(Method::GET, "/v1/credentials/yt/access-token", &agent);
        tasks.push(tokio::spawn(async move {
            let resp = r.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let v: serde_json::Value = resp.json().await.unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap());
    }
    assert_eq!(tokens.len(), 1, "one token for all fifty");
    assert_eq!(
        oidc.refresh_count().await,
        refreshes0 + 1,
        "one broker refresh"
    );

    // The 20 s that follow take in the checker's planned probe (about 25 s after the
    // grant): it wakes (the positive signal), follows the broker's flight and plans from
    // the new token, so it spends nothing.
    tokio::time::sleep_until(asked + Duration::from_secs(20)).await;
    let woke = wakeups(&d).await - wakeups0;
    let refreshes = oidc.refresh_count().await - refreshes0;
    let c = oidc.counters().await;
    println!(
        "50 broker requests after expiry: {refreshes} refresh(es) at the provider in the next 20 s, {woke} checker wake-up(s), {} grant(s) revoked",
        c.grants_revoked
    );
    assert!(woke >= 1.0, "the checker woke for its planned action");
    assert_eq!(
        refreshes, 1,
        "only the broker's refresh: the checker followed it"
    );
    assert_eq!(c.grants_revoked, 0);
    let h = d.health(&device).await;
    assert_eq!(h.credentials[0].state, CredentialState::Ok, "{h:?}");
}

//! Two daemons sharing an OpenBao location with `ha = true`: one refresher per credential
//! (the lease holder), followers serving what it commits, takeover after `kill -9`, and a
//! rotating refresh token never presented twice — against the real oidc-provider with
//! reuse detection and a real `bao server -dev`, with the real `tether` binary.

use super::harness::{config_head, oidc_credential};
use super::restart::{bootstrap_running, free_port, spawn, Running};
use crate::require;
use crate::util::oidc::{OidcOptions, OidcProvider};
use crate::util::openbao::{self, Bao};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tether::agent::access::auth::{AuthStore, Role};
use tether::protocol::HealthReport;

/// One daemon's files and tokens.
struct Node {
    config: std::path::PathBuf,
    device: String,
    agent: String,
}

fn node(dir: &std::path::Path, bao: &Bao, oidc: &OidcProvider) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let mut text = config_head(dir, "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    text.push_str(&format!(
        "\n[[vault.locations]]\nkind = \"openbao\"\naddress = \"{}\"\nprefix = \"team\"\ntoken_file = \"{}\"\nha = true\nlease_ttl = \"4s\"\n",
        bao.address,
        bao.token_file().display()
    ));
    // Probes and refresh tests stay out of the way: the broker and keep-fresh refreshes
    // are the load.
    text.push_str(&oidc_credential(
        "shared",
        oidc,
        "probe_interval = \"1h\"\nrefresh_interval = \"1h\"",
    ));
    let config = dir.join("agent.toml");
    std::fs::write(&config, text).unwrap();
    let store = AuthStore::open(&dir.join("state")).unwrap();
    let (_, device) = store.create_token(Role::Device, "test").unwrap();
    let (_, agent) = store.create_token(Role::Agent, "load").unwrap();
    Node {
        config,
        device: device.secret().to_string(),
        agent: agent.secret().to_string(),
    }
}

async fn health(d: &Running, device: &str) -> Option<HealthReport> {
    let r = d
        .req(reqwest::Method::GET, "/v1/health", device)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// The credential's role on `d` (`holder` / `follower`).
async fn role(d: &Running, device: &str) -> Option<String> {
    let h = health(d, device).await?;
    h.credentials
        .into_iter()
        .find(|c| c.name == "shared")?
        .ha
        .map(|ha| ha.role)
}

/// Waits until exactly one of the running daemons says it holds the lease; its index.
async fn wait_holder(nodes: &[Node], running: &[Option<Running>], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let mut holders = Vec::new();
        for (i, r) in running.iter().enumerate() {
            if let Some(r) = r {
                if role(r, &nodes[i].device).await.as_deref() == Some("holder") {
                    holders.push(i);
                }
            }
        }
        if holders.len() == 1 {
            return holders[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single lease holder within {within:?}: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the holder `d` commits a new generation, then a little more: the kill
/// that follows lands between refreshes, not between the provider's rotation and the
/// commit. Killed there, the new refresh token dies with the process and no daemon can
/// get it back; the next holder then says so rather than present the spent one (every
/// phase of a rotation is killed in `hardening::kill_9_during_rotations_...`). This test
/// is about the takeover.
async fn after_a_commit(d: &Running, device: &str) {
    let generation = |h: Option<HealthReport>| h.map(|h| h.credentials[0].generation);
    let first = generation(health(d, device).await);
    let deadline = Instant::now() + Duration::from_secs(15);
    while generation(health(d, device).await) == first {
        assert!(
            Instant::now() < deadline,
            "the holder committed no new generation within 15 s (it is at {first:?})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[derive(Default)]
struct Load {
    answered: AtomicU64,
    failed: AtomicU64,
    /// Requests whose daemon was down (connection refused or cut by the kill) and that
    /// the client re-sent to the other daemon, as a load balancer would.
    rerouted: AtomicU64,
    longest_ms: AtomicU64,
    /// Completion instants of answered requests, to find the longest silence.
    done: Mutex<Vec<Instant>>,
    failures: Mutex<Vec<String>>,
}

/// Each daemon's (base URL, pinned client, agent token) for one group of workers. A
/// restarted daemon keeps its address and certificate, so the list never changes.
type Targets = Vec<(String, reqwest::Client, String)>;

/// Sources of the load: agents on 8 "hosts" (127.0.0.2-9), 25 workers each, so no source
/// address reaches the daemon's per-address connection cap even when one daemon takes
/// everything.
const SOURCES: usize = 8;

fn client_from(pin: &tether::pin::Fingerprint, source: std::net::IpAddr) -> reqwest::Client {
    let cfg = tether::pin::pinned_tls_config(pin).expect("pinned tls config");
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .local_address(source)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// How long a request keeps being re-sent across the daemons while each one it tries is
/// down. A request can meet both mid-kill (sent to the one just killed, re-sent to the
/// other just before it is killed too in a short run); a load balancer retries it.
const RETRY_FOR: Duration = Duration::from_secs(10);

async fn one_request(list: &Targets, first: usize, load: &Load) {
    let started = Instant::now();
    let mut last_err = String::new();
    let mut k = 0;
    while k < list.len() || started.elapsed() < RETRY_FOR {
        if k >= list.len() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (base, http, agent) = &list[(first + k) % list.len()];
        k += 1;
        let resp = http
            .get(format!("{base}/v1/credentials/shared/access-token"))
            .bearer_auth(agent)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == 200 => {
                let ms = started.elapsed().as_millis() as u64;
                load.longest_ms.fetch_max(ms, Ordering::SeqCst);
                load.answered.fetch_add(1, Ordering::SeqCst);
                load.done.lock().unwrap().push(Instant::now());
                return;
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                load.failed.fetch_add(1, Ordering::SeqCst);
                let mut f = load.failures.lock().unwrap();
                if f.len() < 5 {
                    f.push(format!("{base}: {status} {body}"));
                }
                return;
            }
            Err(e) => {
                // The daemon is down (killed): the other one answers instead.
                load.rerouted.fetch_add(1, Ordering::SeqCst);
                let mut chain = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    chain.push_str(&format!(": {s}"));
                    src = s.source();
                }
                last_err = format!("{base}: {chain}");
            }
        }
    }
    load.failed.fetch_add(1, Ordering::SeqCst);
    let mut f = load.failures.lock().unwrap();
    if f.len() < 5 {
        f.push(format!(
            "no daemon answered within {RETRY_FOR:?}; the last error: {last_err}"
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_two_daemons_one_rotating_credential_kill_9_of_each_holder_never_spends_a_token_twice() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    require!(openbao::available(), openbao::MISSING);
    let minute: u64 = std::env::var("TETHER_HA_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let oidc = OidcProvider::start(OidcOptions {
        rotate_refresh_tokens: true,
        access_token_ttl_secs: 5,
        ..Default::default()
    });
    let bao = Bao::start();
    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![
        node(&dir.path().join("a"), &bao, &oidc),
        node(&dir.path().join("b"), &bao, &oidc),
    ];
    let mut running: Vec<Option<Running>> = vec![Some(spawn(&nodes[0].config)), None];
    // The first authorization happens on daemon a; b starts after and reads it from OpenBao.
    bootstrap_running(
        running[0].as_ref().unwrap(),
        &nodes[0].device,
        "shared",
        &oidc,
    )
    .await;
    running[1] = Some(spawn(&nodes[1].config));
    let first = wait_holder(&nodes, &running, Duration::from_secs(20)).await;
    // The follower names the holder once its lease task has read the lease (its first
    // round may come just after the holder's).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (h, ha) = loop {
        let h = health(
            running[1 - first].as_ref().unwrap(),
            &nodes[1 - first].device,
        )
        .await
        .unwrap();
        let ha = h.credentials[0]
            .ha
            .clone()
            .expect("ha health on the follower");
        if (ha.holder.is_some() && ha.lease_age_secs.is_some()) || Instant::now() > deadline {
            break (h, ha);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ha.role, "follower");
    assert!(ha.holder.is_some() && ha.lease_age_secs.is_some(), "{ha:?}");
    assert!(
        h.locations
            .iter()
            .any(|l| l.name.starts_with("openbao ") && l.ok),
        "{:?}",
        h.locations
    );
    let counters0 = oidc.counters().await;

    let fingerprints: Vec<tether::pin::Fingerprint> = (0..2)
        .map(|i| {
            tether::agent::access::tls::existing_fingerprint(
                &nodes[i].config.parent().unwrap().join("state"),
            )
            .expect("fingerprint")
        })
        .collect();
    let groups: Vec<Arc<Targets>> = (0..SOURCES)
        .map(|g| {
            let source = std::net::IpAddr::from([127, 0, 0, 2 + g as u8]);
            Arc::new(
                (0..2)
                    .map(|i| {
                        let r = running[i].as_ref().unwrap();
                        (
                            r.base.clone(),
                            client_from(&fingerprints[i], source),
                            nodes[i].agent.clone(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..200usize {
        let (targets, load, stop) = (groups[w % SOURCES].clone(), load.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                one_request(&targets, (w + n) % 2, &load).await;
                n += 1;
                // Spread: each worker asks about five times a second.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    let t0 = Instant::now();
    let mut takeovers = Vec::new();
    // A third in: kill -9 the holder; the other takes over; the killed one comes back.
    tokio::time::sleep(Duration::from_secs(minute / 3)).await;
    let mut holder = wait_holder(&nodes, &running, Duration::from_secs(20)).await;
    for round in 0..2 {
        after_a_commit(running[holder].as_ref().unwrap(), &nodes[holder].device).await;
        let killed_at = Instant::now();
        {
            let r = running[holder].as_mut().unwrap();
            r.child.kill().unwrap(); // SIGKILL
            r.child.wait().unwrap();
        }
        running[holder] = None;
        let next = wait_holder(&nodes, &running, Duration::from_secs(30)).await;
        assert_ne!(next, holder);
        let took = killed_at.elapsed();
        takeovers.push(took);
        println!("ha: round {round}: holder {holder} killed, {next} took over after {took:?}");
        running[holder] = Some(spawn(&nodes[holder].config));
        holder = next;
        if round == 0 {
            // Two thirds in: the new holder goes the same way.
            let until = t0 + Duration::from_secs(2 * minute / 3);
            tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
        }
    }
    let until = t0 + Duration::from_secs(minute);
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    let counters = oidc.counters().await;
    let refreshes = counters.refresh_grants - counters0.refresh_grants;
    let mut done = load.done.lock().unwrap().clone();
    done.sort();
    let gap = done
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let failures = load.failed.load(Ordering::SeqCst);
    println!(
        "ha: {} s, 200 workers over 2 daemons: {} answered, {failures} failed, {} re-sent to the other daemon while one was down; longest request {} ms, longest silence between answers {:?}; takeovers after kill -9: {:?}; provider: {refreshes} refreshes, {} refresh errors, {} grants revoked",
        t0.elapsed().as_secs(),
        load.answered.load(Ordering::SeqCst),
        load.rerouted.load(Ordering::SeqCst),
        load.longest_ms.load(Ordering::SeqCst),
        gap,
        takeovers,
        counters.grant_errors - counters0.grant_errors,
        counters.grants_revoked - counters0.grants_revoked,
    );
    assert_eq!(
        counters.grants_revoked, counters0.grants_revoked,
        "a refresh token was presented twice (reuse detection revoked the grant): {:?}",
        counters.last_grant_errors
    );
    assert_eq!(
        counters.grant_errors, counters0.grant_errors,
        "the provider refused a refresh: {:?}",
        counters.last_grant_errors
    );
    assert_eq!(
        failures,
        0,
        "unanswered: {:?}",
        load.failures.lock().unwrap()
    );
    // 5-second tokens refreshed 2.5 s ahead: a refresh about every 2.5 s.
    assert!(
        refreshes as u64 >= minute / 5,
        "too few refreshes to test anything: {refreshes}"
    );
}

#[test]
fn ha_a_holder_that_lost_its_lease_mid_refresh_cannot_commit_over_the_newer_generation() {
    use tether::agent::lease::leases::{Leases, Spend, Tick};
    use tether::vault::openbao::LocationConfig;
    use tether::vault::{Record, Vault, VaultConfig, VaultError};
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start();
    let mut cfg = bao.location_config("team");
    cfg.ha = true;
    cfg.lease_ttl = Duration::from_secs(3);
    let open = |dir: &std::path::Path| {
        let mut vc = VaultConfig::new(dir.join("vault"), vec![]);
        vc.locations = vec![LocationConfig::Openbao(cfg.clone())];
        Vault::open(vc).expect("open").0
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (va, vb) = (open(da.path()), open(db.path()));
    let record = |tag: &str| {
        let mut r = Record::new("x", "generic");
        r.refresh_token = Some(tether::secret::RefreshToken::new(format!("rt-{tag}")));
        r
    };
    va.commit(record("1")).unwrap();
    let lease =
        |v: &Vault, me: &str| Leases::new(v.openbao().unwrap().1, "team", me.into(), cfg.lease_ttl);
    let (la, lb) = (lease(&va, "a"), lease(&vb, "b"));
    assert_eq!(
        la.tick("x", |_| panic!("nothing to inherit")),
        Tick::Acquired { inherited: None }
    );
    assert!(la.holds("x").is_some());
    assert_eq!(lb.tick("x", |_| panic!("b is a follower")), Tick::Same);
    assert!(lb.holds("x").is_none());

    // A starts a refresh of generation 1 (the spend is written into the lease), then
    // stalls past its lease (a pause, a partition): no renewals.
    let base = va.get("x").unwrap().unwrap().generation;
    let spend = Spend {
        generation: base,
        token_id: "abc".into(),
        started_at: chrono::Utc::now(),
    };
    la.begin_spend("x", spend.clone())
        .expect("a holds the lease");
    let deadline = Instant::now() + Duration::from_secs(15);
    let inherited = loop {
        let mut got = None;
        if let Tick::Acquired { .. } = lb.tick("x", |s| got = Some(s.clone())) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "b never took over the lapsed lease"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // B took over only after A's own clock says A's lease ran out, and learnt what A was
    // spending (so it asks the provider before presenting that token).
    assert!(la.holds("x").is_none(), "a still thinks it holds the lease");
    assert_eq!(inherited, Some(spend.clone()));
    assert!(lb.holds("x").is_some());
    let committed = vb
        .commit_after(record("2"), base)
        .expect("b commits generation 2");
    assert_eq!(committed.generation, 2);

    // A's answer arrives: refused everywhere, nothing overwritten, and it says why.
    let before = crate::vault::snapshot(&da.path().join("vault"));
    let err = va.commit_after(record("a-late"), base).unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::Stale {
                based_on: 1,
                newer: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("another daemon"), "{err}");
    assert_eq!(crate::vault::snapshot(&da.path().join("vault")), before);
    let newest = vb.get("x").unwrap().unwrap();
    assert_eq!(newest.refresh_token.unwrap().secret(), "rt-2");
    // A learns it lost the lease and cannot record a new spend.
    assert_eq!(la.tick("x", |_| {}), Tick::Lost);
    assert!(la.begin_spend("x", spend).is_err());
}

/// A credential added by a config reload (SIGHUP) joins the election: the lease task
/// reads the credential set every round, not once at start.
#[tokio::test]
async fn ha_a_credential_added_by_reload_gets_its_lease() {
    require!(crate::util::oidc::available(), crate::util::oidc::MISSING);
    require!(openbao::available(), openbao::MISSING);
    let oidc = OidcProvider::start(OidcOptions::default());
    let bao = Bao::start();
    let dir = tempfile::tempdir().unwrap();
    let n = node(&dir.path().join("a"), &bao, &oidc);
    let running = vec![Some(spawn(&n.config))];
    let d = running[0].as_ref().unwrap();
    bootstrap_running(d, &n.device, "shared", &oidc).await;
    wait_holder(std::slice::from_ref(&n), &running, Duration::from_secs(20)).await;

    let mut text = std::fs::read_to_string(&n.config).unwrap();
    text.push_str(&oidc_credential(
        "added",
        &oidc,
        "probe_interval = \"1h\"\nrefresh_interval = \"1h\"",
    ));
    std::fs::write(&n.config, text).unwrap();
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    assert_eq!(unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) }, 0);
    let role_of = |h: &HealthReport| {
        h.credentials
            .iter()
            .find(|c| c.name == "added")
            .map(|c| c.ha.as_ref().map(|ha| ha.role.clone()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(d, &n.device)
        .await
        .and_then(|h| role_of(&h))
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the reload did not add the credential"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bootstrap_running(d, &n.device, "added", &oidc).await;
    // The lease task ticks every sixth of the 4 s TTL: a few rounds are plenty.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let role = health(d, &n.device)
            .await
            .and_then(|h| role_of(&h))
            .flatten();
        if role.as_deref() == Some("holder") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the added credential never got its lease: role {role:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

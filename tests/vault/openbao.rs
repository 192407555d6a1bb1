//! The OpenBao KV v2 location against a real `bao server -dev` on loopback: commit,
//! history and rollback on KV versions, check-and-set refusing a stale writer, reconcile
//! with each side wiped, an outage (commits go to the files, the location is reported, then
//! repaired), a token that cannot write, TLS with a CA file and AppRole login.

use super::{refresh, sample, Dirs};
use crate::require;
use crate::util::openbao::{self, Bao};
use tether::vault::location::{Location, LocationError};
use tether::vault::openbao::{
    AppRoleConfig, KvClient, LocationConfig, OpenBaoConfig, OpenBaoLocation,
};
use tether::vault::{Vault, VaultConfig, VaultError};

fn vault_cfg(dirs: &Dirs, bao: &OpenBaoConfig) -> VaultConfig {
    let mut c = dirs.config();
    c.locations = vec![LocationConfig::Openbao(bao.clone())];
    c
}

fn open(dirs: &Dirs, bao: &OpenBaoConfig) -> Vault {
    Vault::open(vault_cfg(dirs, bao))
        .expect("open a vault with an openbao location")
        .0
}

/// Generations stored in the KV secret's live versions, in version order.
fn kv_generations(bao: &Bao, path: &str) -> Vec<u64> {
    let meta = bao.metadata(path);
    let mut out = Vec::new();
    let Some(versions) = meta["versions"].as_object() else {
        return out;
    };
    let mut vs: Vec<u64> = versions
        .iter()
        .filter(|(_, m)| {
            m["deletion_time"].as_str().unwrap_or("").is_empty() && m["destroyed"] == false
        })
        .filter_map(|(k, _)| k.parse().ok())
        .collect();
    vs.sort_unstable();
    for v in vs {
        let (_, b) = bao.api("GET", &format!("secret/data/{path}?version={v}"), None);
        out.push(
            b["data"]["data"]["generation"]
                .as_u64()
                .expect("generation field"),
        );
    }
    out
}

fn health_of(v: &Vault, prefix: &str) -> tether::protocol::LocationHealth {
    v.location_health()
        .into_iter()
        .find(|l| l.name.starts_with(prefix))
        .expect("location listed")
}

#[test]
fn openbao_commit_history_and_rollback_map_onto_kv_versions() {
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start();
    let dirs = Dirs::new(0);
    let cfg = bao.location_config("team");
    let v = open(&dirs, &cfg);
    for tag in ["a", "b", "c"] {
        let report = v.commit(sample("youtube", tag)).expect("commit");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert!(
            report.written.iter().any(|w| w.starts_with("openbao ")),
            "{:?}",
            report.written
        );
    }
    // One KV secret per credential, one version per generation.
    assert_eq!(kv_generations(&bao, "team/youtube"), vec![1, 2, 3]);
    let newest = bao.read("team/youtube");
    assert!(newest["record"].as_str().unwrap().contains("1//refresh-c"));

    let history = v.history("youtube").expect("history");
    assert_eq!(history.len(), 3);
    assert!(history[0]
        .locations
        .iter()
        .any(|l| l.starts_with("openbao ")));

    let report = v.rollback("youtube", 1).expect("rollback");
    assert_eq!(report.generation, 4);
    assert_eq!(kv_generations(&bao, "team/youtube"), vec![1, 2, 3, 4]);
    assert!(bao.read("team/youtube")["record"]
        .as_str()
        .unwrap()
        .contains("1//refresh-a"));

    // A second process that sees only OpenBao (fresh directories) reads the same record.
    let dirs2 = Dirs::new(0);
    let v2 = open(&dirs2, &cfg);
    let r = v2.get("youtube").unwrap().expect("record from openbao");
    assert_eq!(r.generation, 4);
    assert_eq!(refresh(&r), "1//refresh-a");

    // History beyond `keep` is destroyed in OpenBao like files are removed.
    let mut c = vault_cfg(&dirs, &cfg);
    c.keep = 2;
    let (v3, _) = Vault::open(c).unwrap();
    v3.commit(sample("youtube", "d")).unwrap();
    assert_eq!(kv_generations(&bao, "team/youtube"), vec![4, 5]);
}

#[test]
fn openbao_check_and_set_refuses_a_stale_writer() {
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start();
    let cfg = bao.location_config("team");

    // Two processes' locations on the same secret: A looks, B commits, A's write loses.
    let a = OpenBaoLocation::new(std::sync::Arc::new(KvClient::new(&cfg).unwrap()), "team");
    let b = OpenBaoLocation::new(std::sync::Arc::new(KvClient::new(&cfg).unwrap()), "team");
    let bytes = |tag: &str, g: u64| {
        let mut r = sample("x", tag);
        r.generation = g;
        tether::vault::record::encode(&r)
    };
    assert_eq!(a.generations("x").unwrap(), Vec::<u64>::new());
    assert_eq!(b.generations("x").unwrap(), Vec::<u64>::new());
    b.create("x", 1, &bytes("b", 1)).expect("b writes first");
    let err = a.create("x", 1, &bytes("a", 1)).unwrap_err();
    assert!(matches!(err, LocationError::Stale { .. }), "{err}");
    assert!(err.to_string().contains("check-and-set"), "{err}");
    assert_eq!(kv_generations(&bao, "team/x"), vec![1]);
    assert!(bao.read("team/x")["record"]
        .as_str()
        .unwrap()
        .contains("refresh-b"));

    // Through the vault: a change made from generation 1 after another daemon committed
    // generation 2 is refused, and nothing is written anywhere.
    let dirs_a = Dirs::new(0);
    let dirs_b = Dirs::new(0);
    let va = open(&dirs_a, &cfg);
    let vb = open(&dirs_b, &cfg);
    let base = va.get("x").unwrap().unwrap().generation;
    vb.commit(sample("x", "newer"))
        .expect("b commits generation 2");
    let before = super::snapshot(&dirs_a.primary);
    let err = va.commit_after(sample("x", "stale"), base).unwrap_err();
    match &err {
        VaultError::Stale {
            based_on, newer, ..
        } => {
            assert_eq!((*based_on, *newer), (1, 2));
        }
        other => panic!("expected Stale, got {other}"),
    }
    assert!(err.to_string().contains("nothing was overwritten"), "{err}");
    assert_eq!(
        super::snapshot(&dirs_a.primary),
        before,
        "a's files untouched"
    );
    assert_eq!(kv_generations(&bao, "team/x"), vec![1, 2]);
    assert_eq!(refresh(&va.get("x").unwrap().unwrap()), "1//refresh-newer");
    // Made from the newest generation, the same change goes through.
    let report = va
        .commit_after(sample("x", "fresh"), 2)
        .expect("based on the newest");
    assert_eq!(report.generation, 3);
}

#[test]
fn openbao_reconcile_restores_each_side_wiped_in_turn() {
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start();
    let dirs = Dirs::new(0);
    let cfg = bao.location_config("team");
    let v = open(&dirs, &cfg);
    v.commit(sample("youtube", "a")).unwrap();
    v.commit(sample("youtube", "b")).unwrap();
    v.commit(sample("github", "g")).unwrap();

    // OpenBao wiped: the files refill it.
    bao.wipe("team/youtube");
    bao.wipe("team/github");
    let report = v.reconcile().unwrap();
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.location.starts_with("openbao ") && r.credential == "youtube"),
        "{:?}",
        report.repairs
    );
    assert_eq!(kv_generations(&bao, "team/youtube"), vec![2]);
    assert_eq!(kv_generations(&bao, "team/github"), vec![1]);

    // The files wiped: OpenBao refills them.
    std::fs::remove_dir_all(dirs.primary.join("youtube")).unwrap();
    std::fs::remove_dir_all(dirs.primary.join("github")).unwrap();
    let report = v.reconcile().unwrap();
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.location.starts_with("primary") && r.credential == "youtube"),
        "{:?}",
        report.repairs
    );
    assert_eq!(super::gens(&dirs.primary, "youtube"), vec![2]);
    assert_eq!(super::gens(&dirs.primary, "github"), vec![1]);
    assert_eq!(refresh(&v.get("youtube").unwrap().unwrap()), "1//refresh-b");

    // A version overwritten with garbage by hand is replaced by a good copy.
    let (s, _) = bao.api(
        "POST",
        "secret/data/team/github",
        Some(serde_json::json!({"data": {"generation": 1, "record": "garbage"}})),
    );
    assert_eq!(s, 200);
    let report = v.reconcile().unwrap();
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.location.starts_with("openbao ") && r.credential == "github"),
        "{:?}",
        report.repairs
    );
    assert!(bao.read("team/github")["record"]
        .as_str()
        .unwrap()
        .contains("refresh-g"));
}

#[test]
fn openbao_down_commits_go_to_the_files_then_it_is_repaired() {
    require!(openbao::available(), openbao::MISSING);
    let mut bao = Bao::start();
    let dirs = Dirs::new(1);
    let cfg = bao.location_config("team");
    let v = open(&dirs, &cfg);
    v.commit(sample("youtube", "a")).unwrap();
    assert!(health_of(&v, "openbao").ok);

    bao.stop();
    let report = v.commit(sample("youtube", "b")).expect("the files take it");
    assert_eq!(report.generation, 2);
    assert_eq!(report.written.len(), 2, "{:?}", report.written);
    let f = report
        .failed
        .iter()
        .find(|f| f.location.starts_with("openbao "))
        .expect("openbao listed as failed");
    assert_eq!(f.code, "unreachable", "{f}");
    assert!(f.error.contains("cannot reach"), "{f}");
    let h = health_of(&v, "openbao");
    assert!(!h.ok);
    assert_eq!(h.code.as_deref(), Some("unreachable"));
    // The cheap check keeps reporting it while it is down.
    let report = v
        .quick_check()
        .unwrap()
        .expect("a location in trouble reconciles");
    assert!(
        report.problems.iter().any(|p| p.contains("openbao")),
        "{:?}",
        report.problems
    );
    assert!(!health_of(&v, "openbao").ok);
    assert_eq!(refresh(&v.get("youtube").unwrap().unwrap()), "1//refresh-b");

    // Back (a dev server returns empty): the next check refills it with the newest.
    bao.restart();
    let report = v.quick_check().unwrap().expect("reconciles");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.location.starts_with("openbao ")),
        "{:?}",
        report
    );
    assert!(health_of(&v, "openbao").ok);
    assert_eq!(kv_generations(&bao, "team/youtube"), vec![2]);
    assert!(bao.read("team/youtube")["record"]
        .as_str()
        .unwrap()
        .contains("refresh-b"));
}

#[test]
fn openbao_token_that_cannot_write_is_reported_like_a_failing_disk() {
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start();
    let read_only = bao.token_with_policy(
        "read-only",
        r#"path "secret/data/team/*" { capabilities = ["read"] }
path "secret/metadata/team/*" { capabilities = ["read", "list"] }
path "secret/metadata/team" { capabilities = ["list"] }"#,
    );
    let mut cfg = bao.location_config("team");
    cfg.token_file = Some(read_only);
    let dirs = Dirs::new(0);
    let (v, report) = Vault::open(vault_cfg(&dirs, &cfg)).expect("the files still open");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("permission denied")),
        "{:?}",
        report.problems
    );
    let h = health_of(&v, "openbao");
    assert!(!h.ok);
    assert_eq!(h.code.as_deref(), Some("permission_denied"));
    assert!(h.error.unwrap().contains("dist/openbao-policy.hcl"));
    let report = v.commit(sample("youtube", "a")).expect("the files take it");
    assert_eq!(report.written.len(), 1);

    // The policy shipped in dist/ is enough.
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/openbao-policy.hcl"),
    )
    .expect("dist/openbao-policy.hcl");
    let mut cfg = bao.location_config("tether");
    cfg.token_file = Some(bao.token_with_policy("tether", &policy));
    let dirs = Dirs::new(0);
    let v = open(&dirs, &cfg);
    assert!(health_of(&v, "openbao").ok, "{:?}", v.location_health());
    v.commit(sample("youtube", "a")).unwrap();
    let report = v.commit(sample("youtube", "b")).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(kv_generations(&bao, "tether/youtube"), vec![1, 2]);
}

#[test]
fn openbao_over_tls_with_a_ca_file_and_approle_login() {
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start_tls();
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/openbao-policy.hcl"),
    )
    .unwrap();
    let (s, b) = bao.api(
        "PUT",
        "sys/policies/acl/tether",
        Some(serde_json::json!({ "policy": policy })),
    );
    assert!(s == 204 || s == 200, "{s} {b}");
    let (role_id, secret_id) = bao.approle("tether-agent", "tether");
    let mut cfg = bao.location_config("tether");
    cfg.token_file = None;
    cfg.approle = Some(AppRoleConfig {
        role_id_file: role_id,
        secret_id_file: secret_id,
        mount: "approle".into(),
    });
    let dirs = Dirs::new(0);
    let v = open(&dirs, &cfg);
    assert!(health_of(&v, "openbao").ok, "{:?}", v.location_health());
    let report = v.commit(sample("youtube", "tls")).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(bao.read("tether/youtube")["record"]
        .as_str()
        .unwrap()
        .contains("refresh-tls"));

    // Without the CA file the server's certificate is not trusted: reported, not used.
    let mut untrusted = cfg.clone();
    untrusted.ca_file = None;
    let dirs = Dirs::new(0);
    let (v, _) = Vault::open(vault_cfg(&dirs, &untrusted)).unwrap();
    let h = health_of(&v, "openbao");
    assert!(!h.ok);
    assert_eq!(h.code.as_deref(), Some("unreachable"), "{h:?}");
}

/// The live tokens that AppRole logins made (root lists every accessor and looks each up).
fn approle_tokens(bao: &Bao) -> usize {
    let (s, b) = bao.api("LIST", "auth/token/accessors", None);
    assert_eq!(s, 200, "{b}");
    b["data"]["keys"]
        .as_array()
        .expect("accessors")
        .iter()
        .filter(|a| {
            let (_, t) = bao.api(
                "POST",
                "auth/token/lookup-accessor",
                Some(serde_json::json!({ "accessor": a })),
            );
            t["data"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("auth/approle/login"))
        })
        .count()
}

#[test]
fn openbao_approle_logs_in_again_once_per_token_and_revokes_the_refused_one() {
    require!(openbao::available(), openbao::MISSING);
    let bao = Bao::start();
    // Reads only: every write is refused by the policy, however often it logs in.
    let (s, b) = bao.api(
        "PUT",
        "sys/policies/acl/reader",
        Some(serde_json::json!({ "policy": r#"path "secret/data/team/*" { capabilities = ["read"] }"# })),
    );
    assert!(s == 204 || s == 200, "{s} {b}");
    let (role_id, secret_id) = bao.approle("reader", "reader");
    let mut cfg = bao.location_config("team");
    cfg.token_file = None;
    cfg.approle = Some(AppRoleConfig {
        role_id_file: role_id,
        secret_id_file: secret_id,
        mount: "approle".into(),
    });
    let client = KvClient::new(&cfg).unwrap();
    let data = serde_json::json!({"record": "x"});
    // A read works: the token is proven.
    assert_eq!(client.read("team/youtube", None).unwrap(), None);
    assert_eq!(approle_tokens(&bao), 1);
    // The first refusal of a proven token logs in again once and revokes the old token;
    // the new one is refused too, so the next ten writes log in no more.
    for _ in 0..10 {
        let e = client.write("team/youtube", &data, None).unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{e}");
    }
    assert_eq!(
        approle_tokens(&bao),
        1,
        "one token alive: the refused one was revoked and no login followed"
    );
    // Reads still work with the new token.
    assert_eq!(client.read("team/youtube", None).unwrap(), None);
}

#[test]
fn openbao_secrets_redact_in_debug() {
    let t = tether::secret::OpenBaoToken::new("s.SECRETTOKEN");
    let s = tether::secret::AppRoleSecretId::new("SECRETID");
    let dbg = format!("{t:?} {s:?} {t} {s}");
    assert!(!dbg.contains("SECRET"), "{dbg}");
}

#[test]
fn vault_status_shows_the_openbao_location_beside_the_files() {
    require!(openbao::available(), openbao::MISSING);
    let mut bao = Bao::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"studio\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[[vault.locations]]\nkind = \"openbao\"\naddress = \"{}\"\nprefix = \"team\"\ntoken_file = \"{}\"\n",
            dir.path().join("state").display(),
            bao.address,
            bao.token_file().display()
        ),
    )
    .unwrap();
    let import = std::process::Command::new(crate::util::tether_bin())
        .args(["vault", "import", "youtube", "--config"])
        .arg(&config)
        .arg("--from")
        .arg({
            let p = dir.path().join("token.json");
            std::fs::write(
                &p,
                r#"{"access_token":"ya29.a","refresh_token":"1//r","expires_in":3600}"#,
            )
            .unwrap();
            p
        })
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let status = |cfg: &std::path::Path| {
        let out = std::process::Command::new(crate::util::tether_bin())
            .args(["vault", "status", "--config"])
            .arg(cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = status(&config);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("ok      openbao {}/secret/team", bao.address)),
        "{text}"
    );
    assert!(text.contains("ok      primary"), "{text}");
    assert!(bao.read("team/youtube")["record"]
        .as_str()
        .unwrap()
        .contains("1//r"));

    bao.stop();
    let (code, text) = status(&config);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!("FAILED  openbao {}", bao.address)),
        "{text}"
    );
    assert!(text.contains("cannot reach"), "{text}");
    assert!(text.contains("youtube"), "the files still serve it: {text}");
}

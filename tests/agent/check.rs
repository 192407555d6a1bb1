//! `tether agent check`: each problem class is found on a real file system, against real
//! HTTP servers on loopback, and printed with its fix.

use super::harness::config_head;
use crate::util;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use tether::agent::config::lint::{self, AgentUser, Problem, ProblemClass};
use tether::agent::config::AgentConfig;

/// An HTTP server on 127.0.0.1 whose every answer carries `Date: now + skew_secs`.
async fn date_server(skew_secs: i64) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        let date = chrono::Utc::now() + chrono::Duration::seconds(skew_secs);
        (
            [(
                axum::http::header::DATE,
                date.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            )],
            "{}",
        )
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, task)
}

/// A credential whose provider endpoints are under `base`.
fn credential(name: &str, base: &str, extra: &str) -> String {
    format!(
        r#"
[[credentials]]
name = "{name}"
provider = "generic"
client_id = "c"
{extra}
[credentials.overrides]
auth_url = "{base}/auth"
token_url = "{base}/token"
"#
    )
}

fn write_config(dir: &Path, head_extra: &str, body: &str) -> (std::path::PathBuf, AgentConfig) {
    let path = dir.join("agent.toml");
    std::fs::write(&path, format!("{}{body}", config_head(dir, head_extra))).unwrap();
    let cfg = tether::agent::config::parse(&path).expect("test config parses");
    (path, cfg)
}

fn of(problems: &[Problem], class: ProblemClass) -> Vec<&Problem> {
    problems.iter().filter(|p| p.class == class).collect()
}

/// Someone who owns nothing here.
fn stranger() -> AgentUser {
    AgentUser {
        name: "stranger".into(),
        uid: 424_242,
        gids: vec![424_242],
    }
}

fn me() -> AgentUser {
    // SAFETY: getuid cannot fail.
    AgentUser::by_uid(unsafe { libc::getuid() }).expect("the test's own user exists")
}

async fn run(cfg: &AgentConfig, user: Option<&AgentUser>) -> Vec<Problem> {
    lint::check(cfg, &lint::http_client(), user).await
}

#[tokio::test]
async fn plain_http_and_clock_skew_are_found_and_a_good_clock_is_not() {
    let (skewed, _a) = date_server(-600).await;
    let (good, _b) = date_server(0).await;
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}{}",
        credential("slow", &skewed, ""),
        credential("fine", &good, "")
    );
    let (_, cfg) = write_config(dir.path(), "", &body);
    let problems = run(&cfg, Some(&me())).await;
    let http = of(&problems, ProblemClass::PlainHttp);
    // auth_url and token_url of both credentials.
    assert_eq!(http.len(), 4, "{problems:#?}");
    assert!(http[0].problem.contains("is plain http"), "{:?}", http[0]);
    assert!(http[0].fix.contains("https endpoint"), "{:?}", http[0]);
    let skew = of(&problems, ProblemClass::ClockSkew);
    assert_eq!(skew.len(), 1, "{problems:#?}");
    assert!(
        skew[0].problem.contains("ahead of 127.0.0.1"),
        "{:?}",
        skew[0]
    );
    let secs: i64 = skew[0]
        .problem
        .split("clock is ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the skew in seconds");
    assert!((595..=605).contains(&secs), "{secs}");
    assert!(skew[0].fix.contains("timedatectl set-ntp true"));
    assert!(
        of(&problems, ProblemClass::Unreachable).is_empty(),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_and_an_unusable_provider_are_found() {
    // A port that was just free: nothing listens on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}\n[[credentials]]\nname = \"corp\"\nprovider = \"generic\"\nclient_id = \"c\"\n\n[[credentials]]\nname = \"odd\"\nprovider = \"gmail\"\n",
        credential("gone", &format!("http://127.0.0.1:{port}"), "")
    );
    let (_, cfg) = write_config(dir.path(), "", &body);
    let problems = run(&cfg, Some(&me())).await;
    let gone = of(&problems, ProblemClass::Unreachable);
    assert_eq!(gone.len(), 1, "{problems:#?}");
    assert!(
        gone[0].problem.contains("credential gone: token_url"),
        "{:?}",
        gone[0]
    );
    assert!(
        gone[0].problem.contains("cannot be reached"),
        "{:?}",
        gone[0]
    );
    assert!(gone[0].fix.contains("firewall"), "{:?}", gone[0]);
    let bad = of(&problems, ProblemClass::Provider);
    assert_eq!(bad.len(), 2, "{problems:#?}");
    assert!(bad.iter().any(|p| p.problem.contains("corp")));
    assert!(bad.iter().any(|p| p.problem.contains("odd")));
    assert!(bad
        .iter()
        .all(|p| p.fix.contains("[credentials.overrides]")));
}

#[tokio::test]
async fn client_secret_files_missing_empty_open_or_foreign_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _srv) = date_server(0).await;
    let file = |name: &str, text: &str, mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    let good = file("good", "s3cret\n", 0o600);
    let open = file("open", "s3cret\n", 0o644);
    let empty = file("empty", "\n", 0o600);
    let missing = dir.path().join("missing");
    let line = |p: &Path| format!("client_secret_file = \"{}\"", p.display());
    let body = [
        credential("a", &base, &line(&good)),
        credential("b", &base, &line(&open)),
        credential("c", &base, &line(&empty)),
        credential("d", &base, &line(&missing)),
    ]
    .concat();
    let (_, cfg) = write_config(dir.path(), "", &body);
    let problems = run(&cfg, Some(&me())).await;
    let found = of(&problems, ProblemClass::SecretFile);
    let about = |cred: &str| {
        found
            .iter()
            .filter(|p| p.problem.starts_with(&format!("credential {cred}:")))
            .collect::<Vec<_>>()
    };
    assert!(about("a").is_empty(), "{found:#?}");
    assert_eq!(about("b").len(), 1, "{found:#?}");
    assert!(about("b")[0].problem.contains("mode 0644"));
    assert!(about("b")[0].fix.contains("chmod 600"));
    assert_eq!(about("c").len(), 1, "{found:#?}");
    assert!(about("c")[0].problem.contains("is empty"));
    assert_eq!(about("d").len(), 1, "{found:#?}");
    assert!(about("d")[0].problem.contains("cannot be read"));
    // The daemon's user is not the file's owner: 0600 locks it out.
    let problems = run(&cfg, Some(&stranger())).await;
    let foreign: Vec<_> = of(&problems, ProblemClass::SecretFile)
        .into_iter()
        .filter(|p| p.problem.starts_with("credential a:"))
        .collect();
    if std::fs::metadata(&good).unwrap().uid() != 424_242 {
        assert_eq!(foreign.len(), 1, "{problems:#?}");
        assert!(foreign[0]
            .problem
            .contains("cannot be read by the agent's user stranger"));
        assert!(foreign[0].fix.contains("chown stranger"));
    }
}

#[tokio::test]
async fn backups_missing_or_on_the_same_filesystem_are_found() {
    let dir = tempfile::tempdir().unwrap();
    // config_head puts the backup next to the state directory: one filesystem.
    let (_, cfg) = write_config(dir.path(), "", "");
    let problems = run(&cfg, None).await;
    let same = of(&problems, ProblemClass::Backups);
    assert_eq!(same.len(), 1, "{problems:#?}");
    assert!(same[0].problem.contains("same filesystem"), "{:?}", same[0]);
    assert!(same[0].fix.contains("another disk"));

    let path = dir.path().join("agent.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("backup_dirs"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    let cfg = tether::agent::config::parse(&path).unwrap();
    let problems = run(&cfg, None).await;
    let none = of(&problems, ProblemClass::Backups);
    assert_eq!(none.len(), 1, "{problems:#?}");
    assert!(none[0].problem.contains("no backup_dirs"), "{:?}", none[0]);

    // A backup on another filesystem (the tmpfs at /dev/shm, where there is one) is fine.
    let shm = Path::new("/dev/shm");
    let other_fs = shm.is_dir()
        && std::fs::metadata(shm).unwrap().dev() != std::fs::metadata(dir.path()).unwrap().dev();
    if other_fs {
        let b = tempfile::tempdir_in(shm).unwrap();
        std::fs::write(
            &path,
            format!(
                "{}backup_dirs = [\"{}\"]\n",
                std::fs::read_to_string(&path).unwrap(),
                b.path().display()
            ),
        )
        .unwrap();
        let cfg = tether::agent::config::parse(&path).unwrap();
        let problems = run(&cfg, None).await;
        assert!(
            of(&problems, ProblemClass::Backups).is_empty(),
            "{problems:#?}"
        );
    }
}

#[tokio::test]
async fn output_directories_the_agent_cannot_write_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _srv) = date_server(0).await;
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let outputs = format!(
        "[[credentials.outputs]]\npath = \"{}\"\nformat = \"token_json\"\n[[credentials.outputs]]\npath = \"{}\"\nformat = \"token_json\"\n",
        shared.join("token.json").display(),
        shared.join("not/yet/made/token.json").display(),
    );
    let body = format!(
        "\n[[credentials]]\nname = \"o\"\nprovider = \"generic\"\nclient_id = \"c\"\n{outputs}[credentials.overrides]\nauth_url = \"{base}/auth\"\ntoken_url = \"{base}/token\"\n"
    );
    let (_, cfg) = write_config(dir.path(), "", &body);
    // The directory's owner may write it, and may create the missing one below it.
    let problems = run(&cfg, Some(&me())).await;
    assert!(
        of(&problems, ProblemClass::OutputDir).is_empty(),
        "{problems:#?}"
    );
    // Someone else may not: both outputs' directories are named.
    let problems = run(&cfg, Some(&stranger())).await;
    let found = of(&problems, ProblemClass::OutputDir);
    assert_eq!(found.len(), 2, "{problems:#?}");
    assert!(found[0].problem.contains("cannot write"), "{:?}", found[0]);
    assert!(
        found[0].fix.contains("install -d -o stranger"),
        "{:?}",
        found[0]
    );
    assert!(found[0].fix.contains("ReadWritePaths"), "{:?}", found[0]);
}

#[tokio::test]
async fn the_command_prints_each_problem_with_its_fix_and_exits_1() {
    let (base, _srv) = date_server(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_config(dir.path(), "", &credential("web", &base, ""));
    let out = tokio::process::Command::new(util::tether_bin())
        .args(["agent", "check", "--config"])
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("problem [plain-http]: credential web: token_url"),
        "{stdout}"
    );
    assert!(stdout.contains("problem [backups]"), "{stdout}");
    assert_eq!(
        stdout.matches("problem [").count(),
        stdout.matches("\n  fix: ").count(),
        "{stdout}"
    );
    assert!(stdout.contains("problems found"), "{stdout}");
}

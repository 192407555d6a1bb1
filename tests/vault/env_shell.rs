//! The env output sourced by real shells: hostile token values run nothing and arrive
//! exactly; values with line breaks are refused and nothing is written.

use super::Dirs;
use std::path::Path;
use std::process::Command;
use tether::secret::{AccessToken, RefreshToken};
use tether::vault::{OutputFormat, OutputSpec, Record, Vault};

/// Sources `file` in `shell` with a clean environment and prints `$VAR` exactly.
fn sourced(shell: &str, file: &Path, var: &str) -> Vec<u8> {
    let out = Command::new(shell)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("-c")
        .arg(format!(". \"$1\" && printf '%s' \"${var}\""))
        .arg(shell)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {shell}: {e}"));
    assert!(
        out.status.success(),
        "{shell} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn vault_with_env_output(d: &Dirs) -> (Vault, std::path::PathBuf) {
    let env = d.tmp.path().join("agent").join("yt.env");
    let mut cfg = d.config();
    cfg.outputs = vec![OutputSpec {
        credential: "yt".into(),
        path: env.clone(),
        format: OutputFormat::Env {
            access_var: Some("YT_TOKEN".into()),
            refresh_var: Some("YT_REFRESH".into()),
        },
    }];
    let (vault, _) = Vault::open(cfg).expect("open the vault");
    (vault, env)
}

fn record(access: &str) -> Record {
    let mut r = Record::new("yt", "google");
    r.access_token = Some(AccessToken::new(access));
    r.refresh_token = Some(RefreshToken::new("1//plain-refresh-token"));
    r
}

#[test]
fn hostile_values_sourced_by_sh_and_bash_run_nothing_and_arrive_exactly() {
    let d = Dirs::new(0);
    let (vault, env) = vault_with_env_output(&d);
    let mark = d.tmp.path().join("ran");
    let m = mark.display();
    let hostile = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("x;touch {m}"),
        format!("x && touch {m}"),
        format!("'$(touch {m})'"),
        format!("\"$(touch {m})\""),
        format!("'; touch {m}; '"),
        format!("a'\\''b$(touch {m})"),
        "it's \"quoted\" \\ back\\slash".to_string(),
        "$HOME ${PATH} $1 $@".to_string(),
        "~/x:~".to_string(),
        "* ? [a-z] {a,b}".to_string(),
        "tab\there | pipe > redirect < in & bg !hist #comment".to_string(),
        "ünïcødé ✓".to_string(),
    ];
    for value in &hostile {
        vault.commit(record(value)).expect("commit");
        for shell in ["sh", "bash"] {
            assert_eq!(
                String::from_utf8(sourced(shell, &env, "YT_TOKEN")).unwrap(),
                *value,
                "{shell} read another value; the file was:\n{}",
                std::fs::read_to_string(&env).unwrap()
            );
            assert_eq!(
                sourced(shell, &env, "YT_REFRESH"),
                b"1//plain-refresh-token",
                "{shell}"
            );
            assert!(!mark.exists(), "{shell} ran a command from {value:?}");
        }
    }
    // Real tokens stay unquoted, as systemd and docker read them.
    vault
        .commit(record("ya29.a0AfB_byC-x/y+z="))
        .expect("commit");
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(
        text.starts_with("YT_TOKEN=ya29.a0AfB_byC-x/y+z=\n"),
        "{text}"
    );
}

#[test]
fn values_with_line_breaks_are_refused_and_the_env_file_keeps_its_last_good_value() {
    let d = Dirs::new(0);
    let (vault, env) = vault_with_env_output(&d);
    let mark = d.tmp.path().join("ran");
    vault.commit(record("good-token")).expect("commit");
    for value in [
        format!("x\ntouch {}", mark.display()),
        "x\rEVIL=1".to_string(),
        "x'\nEVIL=1\n'".to_string(),
    ] {
        // The generation is stored (the vault never loses a token); the output is not
        // rendered, and says why.
        let report = vault.commit(record(&value)).expect("commit");
        assert!(
            !report.outputs.contains(&env),
            "an env file was written for {value:?}"
        );
        assert_eq!(report.output_errors.len(), 1, "{report:?}");
        assert!(report.output_errors[0].contains("line break"), "{report:?}");
        for shell in ["sh", "bash"] {
            assert_eq!(sourced(shell, &env, "YT_TOKEN"), b"good-token", "{shell}");
            assert!(!mark.exists());
        }
    }
}

//! Device tokens in a real keyring (gnome-keyring unlocked on the session bus), and the
//! announced 0600-file fallback when the bus has no Secret Service.

use super::support::{bus_name_owned, have, session_bus, tether, Daemon, Proc};
use crate::require;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tether::companion::secrets::{Backend, SecretStore, SecretsError, Stored, KEYRING_SERVICE};
use tether::secret::ApiToken;

fn secret_tool_lookup(user: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", KEYRING_SERVICE, "username", user])
        .output()
        .expect("run secret-tool");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        .filter(|s| !s.is_empty())
}

fn keyring_ready() -> bool {
    session_bus() && bus_name_owned("org.freedesktop.secrets") && have("secret-tool")
}
const KEYRING_WHY: &str = "an unlocked gnome-keyring on the session bus (`echo -n pass | gnome-keyring-daemon --unlock --components=secrets`) and secret-tool";

#[test]
fn device_token_round_trip_in_gnome_keyring() {
    require!(keyring_ready(), KEYRING_WHY);
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(dir.path(), Backend::Keyring);
    let agent = format!("test-{}", tether::secret::random_token(6));
    assert_eq!(
        store
            .store(&agent, &ApiToken::new("device-token-1"))
            .unwrap(),
        Stored::Keyring
    );
    // Another client of the same keyring sees it: it is really there, not in a mock.
    assert_eq!(
        secret_tool_lookup(&agent).as_deref(),
        Some("device-token-1")
    );
    assert_eq!(store.load(&agent).unwrap().secret(), "device-token-1");
    store
        .store(&agent, &ApiToken::new("device-token-2"))
        .unwrap();
    assert_eq!(store.load(&agent).unwrap().secret(), "device-token-2");
    assert!(
        !store.file().exists(),
        "nothing written to the fallback file"
    );
    store.delete(&agent).unwrap();
    assert!(matches!(
        store.load(&agent),
        Err(SecretsError::NotFound { .. })
    ));
    assert_eq!(secret_tool_lookup(&agent), None);
    assert!(store.take_notice().is_none(), "no fallback happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_stores_the_device_token_in_gnome_keyring() {
    require!(keyring_ready(), KEYRING_WHY);
    let daemon = Daemon::start("").await;
    let home = tempfile::tempdir().unwrap();
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap();
    let name = format!(
        "kr-{}",
        tether::secret::random_token(4)
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let out = tether(home.path(), &[("DBUS_SESSION_BUS_ADDRESS", &bus)])
        .args(["pair", &daemon.pairing_code(), "--name", &name])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout} {stderr}");
    assert!(stdout.contains("token kept in the os keyring"), "{stdout}");
    assert!(!stderr.contains("not available"), "{stderr}");
    assert!(
        secret_tool_lookup(&name).is_some(),
        "the token is in gnome-keyring"
    );
    assert!(!home.path().join("device-tokens.toml").exists());
    let out = tether(home.path(), &[("DBUS_SESSION_BUS_ADDRESS", &bus)])
        .arg("status")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status reads the token back: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tether(home.path(), &[("DBUS_SESSION_BUS_ADDRESS", &bus)])
        .args(["unpair", &name])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(secret_tool_lookup(&name), None, "unpair deleted it");
}

/// A private session bus with no services at all.
fn empty_bus(dir: &std::path::Path) -> Proc {
    let cfg = dir.join("bus.conf");
    std::fs::write(
        &cfg,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            dir.join("bus.sock").display()
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new("dbus-daemon");
    cmd.arg(format!("--config-file={}", cfg.display()))
        .args(["--nofork", "--print-address=1"]);
    Proc::spawn(cmd, "dbus-daemon")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_service_falls_back_to_a_private_file_and_says_so() {
    require!(
        have("dbus-daemon"),
        "dbus-daemon (apt package dbus-daemon / dbus)"
    );
    let daemon = Daemon::start("").await;
    let home = tempfile::tempdir().unwrap();
    let busdir = tempfile::tempdir().unwrap();
    let bus = empty_bus(busdir.path());
    let address = bus
        .wait_line(false, Duration::from_secs(10), |l| l.starts_with("unix:"))
        .await;
    // The child gets the empty bus; this process's environment is left alone.
    let out = tether(home.path(), &[("DBUS_SESSION_BUS_ADDRESS", address.trim())])
        .args(["pair", &daemon.pairing_code()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout} {stderr}");
    let file = home.path().join("device-tokens.toml");
    let warning: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("keyring is not available"))
        .collect();
    assert_eq!(warning.len(), 1, "announced once: {stderr}");
    assert!(
        warning[0].starts_with("warning: ") && warning[0].contains(&file.display().to_string()),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("token kept in {}", file.display())),
        "{stdout}"
    );
    let meta = std::fs::metadata(&file).expect("the fallback file exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir_mode = std::fs::metadata(home.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("\"studio\" = "));
    // The token works from the file.
    let out = tether(home.path(), &[("DBUS_SESSION_BUS_ADDRESS", address.trim())])
        .arg("status")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The window's commands and the app's state, driven through Tauri's IPC with the mock
//! runtime and the app's real context (so the real capability file is enforced).

use serde_json::{json, Value};
use std::sync::Arc;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};
use tether::companion::reauth::PrintUrl;
use tether::companion::secrets::Backend;
use tether::companion::Companion;
use tether_tray::bridge::Core;

struct Harness {
    _app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    dir: tempfile::TempDir,
}

fn app_with_config(config: Option<&str>) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(text) = config {
        std::fs::write(dir.path().join("companion.toml"), text).expect("write config");
    }
    // Device tokens in the 0600 file: these tests never reach the OS keyring.
    let companion = Companion::open(dir.path(), Backend::File);
    let core = Arc::new(Core::with(companion, Arc::new(PrintUrl)).expect("core opens"));
    let app = tether_tray::run_app(mock_builder(), core)
        .build(tauri::generate_context!())
        .expect("app builds with the mock runtime");
    // The capability grants the window labelled "main"; the app's own window has that label.
    let window = WebviewWindowBuilder::new(&app, tether_tray::window::MAIN, Default::default())
        .build()
        .expect("window");
    Harness {
        _app: app,
        window,
        dir,
    }
}

fn invoke(w: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    tauri::test::get_ipc_response(
        w,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().expect("static url"),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().expect("json reply"))
}

const PAIRED: &str = r#"
poll_interval_secs = 60

[[agent]]
name = "studio"
url = "https://127.0.0.1:7443"
fingerprint = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
"#;

#[test]
fn dashboard_with_nothing_paired_is_grey_and_says_so() {
    let h = app_with_config(None);
    let d = invoke(&h.window, "dashboard", json!({})).expect("dashboard");
    assert_eq!(d["agents"], json!([]));
    assert_eq!(d["summary"]["icon"], "idle");
    assert!(
        d["summary"]["tooltip"]
            .as_str()
            .unwrap()
            .contains("no agent paired"),
        "{d}"
    );
    assert_eq!(d["paused_until"], Value::Null);
}

#[test]
fn dashboard_lists_paired_agents_as_connecting_before_first_contact() {
    let h = app_with_config(Some(PAIRED));
    let d = invoke(&h.window, "dashboard", json!({})).expect("dashboard");
    assert_eq!(d["agents"][0]["name"], "studio");
    assert_eq!(d["agents"][0]["reachability"]["kind"], "connecting");
    assert_eq!(d["summary"]["icon"], "idle");
}

#[test]
fn settings_round_trip_through_the_config_file() {
    let h = app_with_config(Some(PAIRED));
    let s = invoke(&h.window, "settings", json!({})).expect("settings");
    assert_eq!(s["poll_interval_secs"], 60);
    assert_eq!(s["quiet_hours"], Value::Null);

    let new = json!({"poll_interval_secs": 30, "reminder_interval_secs": 7200,
                     "quiet_hours": {"start": "22:00", "end": "07:00"}});
    invoke(&h.window, "save_settings", json!({ "settings": new })).expect("save");
    assert_eq!(
        invoke(&h.window, "settings", json!({})).expect("settings"),
        new
    );
    let text = std::fs::read_to_string(h.dir.path().join("companion.toml")).unwrap();
    assert!(text.contains("poll_interval_secs = 30"), "{text}");
    // Saving settings keeps the paired agent.
    assert!(text.contains("name = \"studio\""), "{text}");
}

#[test]
fn out_of_range_settings_are_refused_and_nothing_is_written() {
    let h = app_with_config(Some(PAIRED));
    let path = h.dir.path().join("companion.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    let bad = json!({"poll_interval_secs": 2, "reminder_interval_secs": 7200, "quiet_hours": null});
    let err = invoke(&h.window, "save_settings", json!({ "settings": bad })).unwrap_err();
    assert_eq!(err["code"], "bad_input", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("check interval 2 s"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn a_broken_config_is_a_config_error_naming_the_file() {
    let h = app_with_config(Some(PAIRED));
    std::fs::write(
        h.dir.path().join("companion.toml"),
        "poll_interval_secs = \"soon\"\n",
    )
    .unwrap();
    let err = invoke(&h.window, "settings", json!({})).unwrap_err();
    assert_eq!(err["code"], "config", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("companion.toml"),
        "{err}"
    );
}

#[test]
fn pairing_with_something_that_is_not_a_code_says_what_a_code_looks_like() {
    let h = app_with_config(None);
    let err = invoke(&h.window, "pair", json!({"code": "https://studio.example"})).unwrap_err();
    assert_eq!(err["code"], "bad_pairing_code", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("tether://pair?"),
        "{err}"
    );
}

#[test]
fn reauth_of_an_unknown_agent_or_a_malformed_name_is_refused_before_any_network() {
    let h = app_with_config(Some(PAIRED));
    let err = invoke(
        &h.window,
        "reauth",
        json!({"agent": "lab", "credential": "youtube"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "unknown_agent", "{err}");
    assert!(err["message"].as_str().unwrap().contains("`lab`"), "{err}");
    let err = invoke(
        &h.window,
        "reauth",
        json!({"agent": "studio", "credential": "../etc"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "bad_input", "{err}");
    let err = invoke(
        &h.window,
        "cancel_reauth",
        json!({"agent": "studio", "credential": "youtube"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "not_running", "{err}");
}

#[test]
fn device_code_sign_in_is_a_command_refusing_bad_names_and_unknown_agents_before_any_network() {
    let h = app_with_config(Some(PAIRED));
    let err = invoke(
        &h.window,
        "device_reauth",
        json!({"agent": "studio", "credential": "../etc"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "bad_input", "{err}");
    let err = invoke(
        &h.window,
        "device_reauth",
        json!({"agent": "lab", "credential": "github"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "unknown_agent", "{err}");
}

#[test]
fn the_dashboard_sends_the_settings_bounds_the_core_enforces() {
    let h = app_with_config(None);
    let d = invoke(&h.window, "dashboard", json!({})).expect("dashboard");
    let b = &d["bounds"]["poll_interval_secs"];
    assert_eq!(
        (b["min"].clone(), b["max"].clone()),
        (json!(10), json!(86_400))
    );
    // Just outside the bound the window is sent, saving is refused with its words.
    let bad = json!({"poll_interval_secs": 9, "reminder_interval_secs": 7200, "quiet_hours": null});
    let err = invoke(&h.window, "save_settings", json!({ "settings": bad })).unwrap_err();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with(b["words"].as_str().unwrap()),
        "{err}"
    );
}

#[test]
fn an_empty_pasted_token_is_refused() {
    let h = app_with_config(Some(PAIRED));
    let err = invoke(
        &h.window,
        "paste_token",
        json!({"agent": "studio", "credential": "telegram", "token": "  "}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "empty_secret", "{err}");
    // The on-purpose replacement of another account is an argument the command takes;
    // it changes nothing about the checks before the agent is asked.
    let err = invoke(
        &h.window,
        "paste_token",
        json!({"agent": "studio", "credential": "telegram", "token": "", "newAccount": true}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "empty_secret", "{err}");
}

#[test]
fn commands_outside_the_capability_are_denied() {
    let h = app_with_config(None);
    // A core command the capability does not grant.
    let err = invoke(&h.window, "plugin:window|close", json!({"label": "main"})).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
    // A command that does not exist.
    assert!(invoke(&h.window, "delete_everything", json!({})).is_err());
}

#[test]
fn a_window_with_another_label_gets_no_commands() {
    let h = app_with_config(None);
    let other = WebviewWindowBuilder::new(h.window.app_handle(), "other", Default::default())
        .build()
        .expect("window");
    let err = invoke(&other, "dashboard", json!({})).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
}

#[test]
fn capability_grants_exactly_the_apps_commands_and_event_listening() {
    let cap: Value = serde_json::from_str(include_str!("../capabilities/default.json")).unwrap();
    let mut granted: Vec<String> = cap["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    granted.sort();
    let mut expected: Vec<String> = tether_tray::commands::COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .chain(["core:event:allow-listen".into()])
        .collect();
    expected.sort();
    assert_eq!(granted, expected);
    assert_eq!(cap["windows"], json!([tether_tray::window::MAIN]));
}

#[test]
fn pause_shows_up_in_the_dashboard_and_the_menu_model() {
    let h = app_with_config(None);
    tether_tray::act(
        h.window.app_handle(),
        tether::companion::tray::MenuAction::Pause,
    );
    let d = invoke(&h.window, "dashboard", json!({})).expect("dashboard");
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(d["paused_until"].clone()).unwrap();
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(59) && left <= chrono::Duration::hours(1),
        "{left}"
    );
    tether_tray::act(
        h.window.app_handle(),
        tether::companion::tray::MenuAction::Resume,
    );
    let d = invoke(&h.window, "dashboard", json!({})).expect("dashboard");
    assert_eq!(d["paused_until"], Value::Null);
}

#[test]
fn pairing_a_code_for_a_paired_url_asks_first_showing_old_and_new_and_changes_nothing() {
    let h = app_with_config(Some(PAIRED));
    let path = h.dir.path().join("companion.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    let new_fp = "b".repeat(64);
    let code = tether::protocol::PairingCode {
        url: "https://127.0.0.1:7443".into(),
        fingerprint: Some(tether::pin::Fingerprint::parse(&new_fp).unwrap()),
        secret: tether::secret::PairingSecret::new("one-time-secret-0123456789"),
    }
    .to_link();
    // Asked before the single-use code is redeemed: no request is made.
    let err = invoke(&h.window, "pair", json!({ "code": code })).unwrap_err();
    assert_eq!(err["code"], "confirm_replace", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("https://127.0.0.1:7443"), "{msg}");
    assert!(msg.contains(&"a".repeat(64)), "old fingerprint: {msg}");
    assert!(msg.contains(&new_fp), "new fingerprint: {msg}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn the_dashboard_shows_each_agents_url_and_pinned_fingerprint() {
    let h = app_with_config(Some(PAIRED));
    let d = invoke(&h.window, "dashboard", json!({})).expect("dashboard");
    assert_eq!(
        d["pairings"],
        json!([{
            "name": "studio",
            "url": "https://127.0.0.1:7443",
            "fingerprint": "a".repeat(64),
            "device_id": null,
        }])
    );
}

#[test]
fn reauth_takes_the_owners_yes_to_a_new_authorization_server() {
    let h = app_with_config(Some(PAIRED));
    // The argument is part of the command's surface; an unknown agent is still refused
    // before any network.
    let err = invoke(
        &h.window,
        "reauth",
        json!({"agent": "lab", "credential": "youtube", "acceptNewServer": true}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "unknown_agent", "{err}");
}

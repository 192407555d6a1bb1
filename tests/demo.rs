//! `tether demo` in watch mode, as a newcomer runs it: the scripted revocation turns the
//! credential red, Enter starts the re-authorization, Allow is clicked in a real browser on
//! the demo consent page, the credential turns green, and nothing is left behind.

use crate::require;
use crate::util::browser::{self, Browser};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_in_the_terminal_goes_red_then_green_and_cleans_up() {
    require!(browser::available(), browser::MISSING);
    let mut child = Command::new(crate::util::tether_bin())
        .args([
            "demo",
            "--revoke-after",
            "1",
            "--no-browser",
            "--no-tray",
            "--exit-when-recovered",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TETHER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tether demo");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("demo| {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();

    let mut temp_dir = None;
    let mut url = None;
    let mut saw_dead = false;
    let mut saw_green = false;
    let browser = Browser::start().await;
    loop {
        let deadline = started + Duration::from_secs(120);
        let line = match tokio::time::timeout_at(deadline.into(), lines.recv()).await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(_) => panic!("the demo did not finish within 120 s"),
        };
        if let Some(i) = line.find("renders ") {
            let path = line[i + 8..].split_whitespace().next().unwrap();
            let dir = path.split("/server/").next().unwrap().to_string();
            temp_dir = Some(std::path::PathBuf::from(dir));
        }
        if line.contains("is DEAD") {
            saw_dead = true;
            stdin.write_all(b"\n").unwrap();
            stdin.flush().unwrap();
        }
        if let Some(u) = line.strip_prefix("open this URL: ") {
            url = Some(u.trim().to_string());
            browser.navigate(u.trim()).await;
            let page = browser.page_text().await;
            assert!(
                page.contains("Demo authorization server"),
                "the consent page says it is a demo: {page}"
            );
            browser.click("#allow").await;
            let done = browser
                .wait_for_text("working again", Duration::from_secs(30))
                .await;
            assert!(
                done.contains("studio") && done.contains("youtube"),
                "{done}"
            );
        }
        if line.contains("is green again") {
            saw_green = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "tether demo exits 0: {status}");
    assert!(saw_dead, "the demo showed the credential dead");
    assert!(url.is_some(), "the demo printed the consent URL");
    assert!(saw_green, "the demo showed the credential green again");
    let dir = temp_dir.expect("the demo said where its files are");
    assert!(!dir.exists(), "the demo removed {}", dir.display());
    browser.close().await;
}

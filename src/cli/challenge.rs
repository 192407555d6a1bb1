//! `tether challenge AGENT/CRED`: what an agent needs from the owner, drawn in the
//! terminal (the QR code to scan, the device code and its page), redrawn as the agent
//! posts new codes until it says its session works; and the same drawing for
//! `tether watch` ([`Shown`]).

use crate::companion::challenge::{terminal_text, Countdowns, Ticker};
use crate::companion::terminal::{line_start, safe};
use crate::companion::watcher::WatchEvent;
use crate::companion::{parse_target, Companion};
use crate::protocol::{CredentialHealth, CredentialState, Event};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Exit code when the credential has no open challenge and is not working either.
const EXIT_NO_CHALLENGE: u8 = 3;

/// Runs `tether challenge`.
pub async fn run(companion: &Companion, target: &str, once: bool) -> anyhow::Result<ExitCode> {
    let (agent, name) = parse_target(target)?;
    let client = companion.client(&agent)?;
    let find = |creds: Vec<CredentialHealth>| {
        creds.into_iter().find(|c| c.name == name).ok_or_else(|| {
            anyhow::anyhow!("agent {agent} has no credential {name}; `tether status` lists them")
        })
    };
    let c = find(client.health().await?.credentials)?;
    let Some(first) = c.challenge.as_ref().map(|p| (p.since, p.revision)) else {
        println!("{agent} · {name} has no open challenge; it is {}.", c.state);
        return Ok(if c.state == CredentialState::Ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_NO_CHALLENGE)
        });
    };
    draw(&agent, &c);
    if once {
        return Ok(ExitCode::SUCCESS);
    }
    println!("(waiting for the agent; Ctrl-C to stop)");
    let _ = std::io::stdout().flush();
    let live = std::io::stdout().is_terminal();
    let mut ticker = ticker_of(&c);
    let mut second = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut shown = first;
    let events = client.events().await?;
    let mut events = std::pin::pin!(events);
    loop {
        let ev = tokio::select! {
            ev = events.next() => ev,
            _ = second.tick() => {
                if let Some(text) = ticker.tick(chrono::Utc::now(), live) {
                    print!("{text}");
                    let _ = std::io::stdout().flush();
                }
                continue;
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let Some(ev) = ev else {
            anyhow::bail!("the agent {agent} closed its event stream; run the command again");
        };
        let Event::StateChanged { credential: c, .. } = ev? else {
            continue;
        };
        if c.name != name {
            continue;
        }
        match c.challenge.as_ref().map(|p| (p.since, p.revision)) {
            Some(now) if now != shown => {
                shown = now;
                if live {
                    // End the countdown's line before the new drawing.
                    println!();
                }
                draw(&agent, &c);
                ticker = ticker_of(&c);
            }
            Some(_) => {}
            None => {
                if live {
                    println!();
                }
                println!(
                    "{agent} · {name}: the agent says it works again ({}).",
                    c.state
                );
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

fn ticker_of(c: &CredentialHealth) -> Ticker {
    Ticker::new(c.challenge.as_ref().and_then(|p| p.challenge.expires_at()))
}

fn draw(agent: &str, c: &CredentialHealth) {
    if let Some(text) = terminal_text(agent, c, chrono::Utc::now()) {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

/// For `tether watch`: draws each new challenge (and each new QR code) once, and keeps
/// their countdowns on the bottom line of a terminal.
#[derive(Debug)]
pub struct Shown {
    drawn: HashMap<(String, String), (chrono::DateTime<chrono::Utc>, u64)>,
    countdowns: Countdowns,
    /// Stdout is a terminal: countdowns are redrawn in place.
    live: bool,
}

impl Shown {
    /// For stdout as it is (a terminal or not).
    pub fn for_stdout() -> Shown {
        Shown {
            drawn: HashMap::new(),
            countdowns: Countdowns::default(),
            live: std::io::stdout().is_terminal(),
        }
    }

    /// What starts every other line `tether watch` prints: on a terminal, the countdown
    /// line is cleared first.
    pub fn line_start(&self) -> &'static str {
        line_start(self.live)
    }

    /// Draws the challenge carried by `ev`, if it is one not drawn yet.
    pub fn on_event(&mut self, ev: &WatchEvent) {
        let (agent, c) = match ev {
            WatchEvent::Credential {
                agent, credential, ..
            }
            | WatchEvent::Updated { agent, credential } => (agent, credential),
            _ => return,
        };
        let key = (agent.clone(), c.name.clone());
        let label = safe(&format!("{agent} · {}", c.name)).into_owned();
        match c.challenge.as_ref() {
            Some(p) if self.drawn.get(&key) != Some(&(p.since, p.revision)) => {
                self.drawn.insert(key, (p.since, p.revision));
                print!("{}", self.line_start());
                draw(agent, c);
                self.countdowns.start(&label, p.challenge.expires_at());
            }
            Some(_) => {}
            None => {
                self.drawn.remove(&key);
                self.countdowns.end(&label);
            }
        }
    }

    /// Each second: the countdowns redrawn (on a terminal) and expiries said.
    pub fn tick(&mut self) {
        if let Some(text) = self.countdowns.tick(chrono::Utc::now(), self.live) {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    }
}

//! The watcher: one task per paired agent that follows `/v1/events`, polls `/v1/health`
//! as a fallback, feeds the [`AgentPolicy`], calls the [`Notifier`] and emits
//! [`WatchEvent`]s; plus one task that turns notification clicks into re-authorizations.
//!
//! Robustness: every deadline is monotonic (wall-clock jumps change nothing); a stalled
//! event stream (the laptop slept, the network changed, a NAT forgot us) is dropped after
//! [`WatchTiming::stream_idle`] without a byte and reconnected, with a poll right away to
//! catch up on anything missed; while the agent is unreachable, polls back off
//! exponentially (capped) with jitter so many laptops do not hit a recovering daemon at once.

use super::config::Config;
use super::error::CompanionError;
use super::handle::{contact_class, Companion};
use super::notice::{Action, Notice};
use super::notifier::{ActionSender, Notifier};
use super::policy::{
    AgentPolicy, ContactFailure, ContactState, Decision, Now, Observation, PolicyConfig,
};
use super::reauth::{Opener, ReauthError, ReauthOptions, ReauthProgress};
use crate::client::{AgentClient, ClientError, ContactClass};
use crate::protocol::{CredentialHealth, CredentialState, Event, VaultHealth};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Timing of the watcher.
#[derive(Debug, Clone, Copy)]
pub struct WatchTiming {
    /// Poll interval while the agent answers (jittered ±10 %).
    pub poll: Duration,
    /// First retry delay while unreachable.
    pub backoff_base: Duration,
    /// Largest retry delay while unreachable.
    pub backoff_cap: Duration,
    /// How often the policy's clock is advanced (reminders, thresholds, quiet-hour ends).
    pub tick: Duration,
    /// An event stream silent this long is considered dead (the daemon sends heartbeats).
    pub stream_idle: Duration,
    /// Follow `/v1/events` (true) or rely on polling alone (false; benchmarks, proxies
    /// that buffer streams).
    pub use_events: bool,
    /// The notification policy.
    pub policy: PolicyConfig,
}

impl WatchTiming {
    /// Timing from the config, with the built-in backoff and stream rules.
    pub fn from_config(cfg: &Config) -> WatchTiming {
        WatchTiming {
            poll: cfg.poll_interval(),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(300)
                .min(cfg.poll_interval().max(Duration::from_secs(60)) * 5),
            tick: Duration::from_secs(15),
            stream_idle: Duration::from_secs(60),
            use_events: true,
            policy: PolicyConfig {
                reminder: cfg.reminder_interval(),
                unreachable_after: cfg.unreachable_after(),
                quiet_hours: cfg.quiet_hours,
            },
        }
    }
}

/// What the watcher reports (to the tray, or to `tether watch`'s log).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchEvent {
    /// A credential was first seen or changed state.
    Credential {
        /// The agent.
        agent: String,
        /// The credential now.
        credential: CredentialHealth,
        /// Its state before (`None` when first seen).
        previous: Option<CredentialState>,
    },
    /// A credential's details changed without a state change (blocked count, last check).
    Updated {
        /// The agent.
        agent: String,
        /// The credential now.
        credential: CredentialHealth,
    },
    /// A credential disappeared from the agent.
    Removed {
        /// The agent.
        agent: String,
        /// Its name.
        credential: String,
    },
    /// Contact with an agent changed.
    Contact {
        /// The agent.
        agent: String,
        /// The new contact state.
        state: ContactState,
    },
    /// The agent's vault changed (a location failed or recovered, a copy was repaired).
    Vault {
        /// The agent.
        agent: String,
        /// The vault now.
        vault: VaultHealth,
    },
    /// The event stream connected or dropped (diagnostics).
    Stream {
        /// The agent.
        agent: String,
        /// True when connected.
        connected: bool,
    },
    /// A notification was handed to the notifier.
    Notified {
        /// The notice.
        notice: Notice,
    },
    /// The notifier failed.
    NotifyFailed {
        /// The agent.
        agent: String,
        /// Why.
        message: String,
    },
    /// The owner clicked "Re-authorize".
    ReauthRequested {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
    },
    /// Progress of a re-authorization started by the watcher.
    Reauth {
        /// The agent.
        agent: String,
        /// The credential.
        credential: String,
        /// Where it is.
        progress: ReauthProgress,
    },
}

/// Exponential backoff with jitter.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    current: Option<Duration>,
    rng: rand::rngs::StdRng,
}

impl Backoff {
    /// A backoff from `base`, doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            current: None,
            rng: rand::rngs::StdRng::from_entropy(),
        }
    }

    /// The next delay: base, 2·base, 4·base … capped, each jittered by up to −20 %.
    pub fn next_delay(&mut self) -> Duration {
        let d = match self.current {
            None => self.base,
            Some(d) => (d * 2).min(self.cap),
        };
        self.current = Some(d);
        // Only shorten, so the cap holds; spreads retries of many companions apart.
        d.mul_f64(1.0 - self.rng.gen_range(0.0..0.2))
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// `d` jittered by ±10 %.
    pub fn jitter(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.rng.gen_range(0.9..1.1))
    }
}

/// The running watcher.
pub struct Watcher {
    events: mpsc::UnboundedReceiver<WatchEvent>,
    actions: ActionSender,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    /// The next event; `None` once every task has stopped.
    pub async fn next_event(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }

    /// A sender the UI can use to request actions (a tray menu's "Re-authorize …").
    pub fn actions(&self) -> ActionSender {
        self.actions.clone()
    }

    /// Stops every task and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

// Here rather than in `handle.rs`: the watcher runs re-authorizations through the
// companion, so the handle file cannot also start the watcher without a circle.
impl Companion {
    /// Starts the watcher over every paired agent, with the config's timing.
    pub fn watch(
        &self,
        notifier: Arc<dyn Notifier>,
        opener: Option<Arc<dyn Opener>>,
    ) -> Result<Watcher, CompanionError> {
        let cfg = self.config()?;
        self.watch_with(WatchTiming::from_config(&cfg), notifier, opener)
    }

    /// Starts the watcher with explicit timing (tests, benchmarks).
    pub fn watch_with(
        &self,
        timing: WatchTiming,
        notifier: Arc<dyn Notifier>,
        opener: Option<Arc<dyn Opener>>,
    ) -> Result<Watcher, CompanionError> {
        let cfg = self.config()?;
        let targets = cfg
            .agents
            .iter()
            .map(|a| {
                let c = self.client_for(a).map_err(|e| ContactFailure {
                    class: contact_class(&e),
                    message: crate::report::chain(&e),
                });
                (a.name.clone(), c)
            })
            .collect();
        Ok(spawn(self.clone(), targets, timing, notifier, opener))
    }
}

/// One agent to watch: its name and a client, or why there is none (missing token).
pub type WatchTarget = (String, Result<AgentClient, ContactFailure>);

/// Starts watching `targets`. Clicks on "Re-authorize" run [`Companion::reauth`] with
/// `opener` when one is given (else they are only reported as events).
pub fn spawn(
    companion: Companion,
    targets: Vec<WatchTarget>,
    timing: WatchTiming,
    notifier: Arc<dyn Notifier>,
    opener: Option<Arc<dyn Opener>>,
) -> Watcher {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (actions, mut actions_rx) = ActionSender::channel();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (name, client) in targets {
        let ctx = AgentCtx {
            policy: AgentPolicy::new(name, timing.policy),
            timing,
            notifier: notifier.clone(),
            events: events_tx.clone(),
            actions: actions.clone(),
        };
        tasks.push(tokio::spawn(run_agent(ctx, client, shutdown_rx.clone())));
    }
    // Clicks → re-authorizations.
    let mut shutdown = shutdown_rx;
    tasks.push(tokio::spawn(async move {
        loop {
            let action = tokio::select! {
                a = actions_rx.recv() => match a { Some(a) => a, None => break },
                _ = shutdown.changed() => break,
            };
            let Action::Reauth { agent, credential } = action;
            let _ = events_tx.send(WatchEvent::ReauthRequested {
                agent: agent.clone(),
                credential: credential.clone(),
            });
            let Some(opener) = opener.clone() else {
                continue;
            };
            let companion = companion.clone();
            let events = events_tx.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let progress = {
                    let (events, agent, credential) =
                        (events.clone(), agent.clone(), credential.clone());
                    move |p: ReauthProgress| {
                        let _ = events.send(WatchEvent::Reauth {
                            agent: agent.clone(),
                            credential: credential.clone(),
                            progress: p,
                        });
                    }
                };
                let cancel = async move {
                    let _ = stop.changed().await;
                };
                let result = companion
                    .reauth_with(
                        &agent,
                        &credential,
                        opener.as_ref(),
                        ReauthOptions::default(),
                        cancel,
                        &progress,
                    )
                    .await;
                if let Err(e) = result {
                    // Errors before the run started (unknown agent, already running) have
                    // not been reported as progress yet.
                    if !matches!(
                        e,
                        CompanionError::Reauth(
                            ReauthError::Listener { .. }
                                | ReauthError::Client(_)
                                | ReauthError::PasteKind { .. }
                                | ReauthError::BadAuthorizeUrl { .. }
                                | ReauthError::ServerChanged { .. }
                        )
                    ) {
                        progress(ReauthProgress::Failed {
                            message: crate::report::chain(&e),
                        });
                    }
                }
            });
        }
    }));
    Watcher {
        events: events_rx,
        actions,
        shutdown: shutdown_tx,
        tasks,
    }
}

struct AgentCtx {
    policy: AgentPolicy,
    timing: WatchTiming,
    notifier: Arc<dyn Notifier>,
    events: mpsc::UnboundedSender<WatchEvent>,
    actions: ActionSender,
}

impl AgentCtx {
    async fn feed(&mut self, obs: Observation) {
        let decisions = self.policy.observe(Now::current(), obs);
        self.dispatch(decisions).await;
    }

    async fn tick(&mut self) {
        let decisions = self.policy.tick(Now::current());
        self.dispatch(decisions).await;
    }

    fn emit(&self, e: WatchEvent) {
        // Nobody listening (the receiver was dropped) is fine: notifications still go out.
        let _ = self.events.send(e);
    }

    async fn dispatch(&mut self, decisions: Vec<Decision>) {
        let agent = self.policy.agent().to_string();
        for d in decisions {
            match d {
                Decision::Transition {
                    credential,
                    previous,
                } => self.emit(WatchEvent::Credential {
                    agent: agent.clone(),
                    credential,
                    previous,
                }),
                Decision::Updated { credential } => self.emit(WatchEvent::Updated {
                    agent: agent.clone(),
                    credential,
                }),
                Decision::Removed { credential } => self.emit(WatchEvent::Removed {
                    agent: agent.clone(),
                    credential,
                }),
                Decision::Contact(state) => self.emit(WatchEvent::Contact {
                    agent: agent.clone(),
                    state,
                }),
                Decision::Vault(vault) => self.emit(WatchEvent::Vault {
                    agent: agent.clone(),
                    vault,
                }),
                Decision::Notify(notice) => {
                    let notifier = self.notifier.clone();
                    let actions = self.actions.clone();
                    let n = notice.clone();
                    // A notifier may block on D-Bus: keep it off the async threads.
                    let r =
                        tokio::task::spawn_blocking(move || notifier.notify(&n, &actions)).await;
                    match r {
                        Ok(Ok(())) => self.emit(WatchEvent::Notified { notice }),
                        Ok(Err(e)) => self.emit(WatchEvent::NotifyFailed {
                            agent: agent.clone(),
                            message: e.to_string(),
                        }),
                        Err(e) => self.emit(WatchEvent::NotifyFailed {
                            agent: agent.clone(),
                            message: format!("notifier panicked: {e}"),
                        }),
                    }
                }
            }
        }
    }
}

fn failure(e: &ClientError) -> ContactFailure {
    ContactFailure {
        class: e.class(),
        message: crate::report::chain(e),
    }
}

type EventStream = Pin<Box<dyn futures_util::Stream<Item = Result<Event, ClientError>> + Send>>;
type Connecting =
    Pin<Box<dyn std::future::Future<Output = Result<EventStream, ClientError>> + Send>>;

async fn run_agent(
    mut ctx: AgentCtx,
    client: Result<AgentClient, ContactFailure>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match client {
        Ok(c) => c,
        Err(f) => {
            // Nothing to poll: report once and stay until shutdown so the tray keeps it.
            ctx.feed(Observation::Failed(f)).await;
            let _ = shutdown.changed().await;
            return;
        }
    };
    let timing = ctx.timing;
    let mut poll_backoff = Backoff::new(timing.backoff_base, timing.backoff_cap);
    let mut stream_backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut next_poll = Instant::now();
    let mut stream: Option<EventStream> = None;
    let mut connecting: Option<Connecting> = None;
    let mut stream_retry_at = Instant::now();
    let mut stream_seen = Instant::now();
    let mut contact_ok = false;
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        // Open the event stream only while the agent answers polls; retries back off.
        let want_stream = timing.use_events && contact_ok;
        if stream.is_none()
            && connecting.is_none()
            && want_stream
            && Instant::now() >= stream_retry_at
        {
            let c = client.clone();
            connecting = Some(Box::pin(async move {
                c.events().await.map(|s| Box::pin(s) as EventStream)
            }));
        }
        let idle_deadline = stream_seen + timing.stream_idle;
        let stream_wakeup = if stream.is_none() && connecting.is_none() && want_stream {
            Some(stream_retry_at)
        } else {
            None
        };
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep_until(next_poll) => {
                match client.health().await {
                    Ok(report) => {
                        contact_ok = true;
                        poll_backoff.reset();
                        next_poll = Instant::now() + poll_backoff.jitter(timing.poll);
                        ctx.feed(Observation::Health(report)).await;
                    }
                    Err(e) => {
                        contact_ok = false;
                        // A refused token or a version mismatch will not fix itself quickly:
                        // poll at the normal pace; otherwise back off.
                        next_poll = Instant::now() + match e.class() {
                            ContactClass::Unreachable => poll_backoff.next_delay(),
                            _ => poll_backoff.jitter(timing.poll),
                        };
                        ctx.feed(Observation::Failed(failure(&e))).await;
                    }
                }
            }
            r = async { connecting.as_mut().expect("guarded by the select condition").await }, if connecting.is_some() => {
                connecting = None;
                match r {
                    Ok(s) => {
                        stream = Some(s);
                        stream_seen = Instant::now();
                        stream_backoff.reset();
                        ctx.emit(WatchEvent::Stream { agent: ctx.policy.agent().to_string(), connected: true });
                        // Catch up on anything that changed while we were not listening.
                        next_poll = Instant::now();
                    }
                    Err(e) => {
                        tracing::debug!(agent = %client.name(), "event stream not available: {e}");
                        stream_retry_at = Instant::now() + stream_backoff.next_delay();
                    }
                }
            }
            item = async { stream.as_mut().expect("guarded by the select condition").next().await }, if stream.is_some() => {
                stream_seen = Instant::now();
                match item {
                    Some(Ok(Event::StateChanged { credential, .. })) => ctx.feed(Observation::Changed(credential)).await,
                    Some(Ok(Event::VaultChanged { vault, .. })) => ctx.feed(Observation::Vault(vault)).await,
                    Some(Ok(Event::Heartbeat { .. })) => ctx.feed(Observation::Alive).await,
                    // Events were dropped on the daemon's side: catch up from health now.
                    Some(Ok(Event::Resync { missed, .. })) => {
                        tracing::debug!(agent = %client.name(), missed, "event stream fell behind; fetching health");
                        ctx.feed(Observation::Alive).await;
                        next_poll = Instant::now();
                    }
                    // Only agent-token streams carry these; a sign of life all the same.
                    Some(Ok(Event::Recovered { .. } | Event::ScopesMissing { .. })) => ctx.feed(Observation::Alive).await,
                    Some(Err(e)) => {
                        tracing::debug!(agent = %client.name(), "event stream broke: {e}");
                        stream = None;
                        stream_retry_at = Instant::now() + stream_backoff.next_delay();
                        ctx.emit(WatchEvent::Stream { agent: ctx.policy.agent().to_string(), connected: false });
                        next_poll = Instant::now();
                    }
                    None => {
                        stream = None;
                        stream_retry_at = Instant::now() + stream_backoff.next_delay();
                        ctx.emit(WatchEvent::Stream { agent: ctx.policy.agent().to_string(), connected: false });
                        // The daemon may have stopped: find out now, not at the next poll.
                        next_poll = Instant::now();
                    }
                }
            }
            () = tokio::time::sleep_until(idle_deadline), if stream.is_some() => {
                // No heartbeat for a long time: the connection is dead without knowing it.
                stream = None;
                stream_retry_at = Instant::now();
                ctx.emit(WatchEvent::Stream { agent: ctx.policy.agent().to_string(), connected: false });
                next_poll = Instant::now();
            }
            () = async { tokio::time::sleep_until(stream_wakeup.expect("guarded")).await }, if stream_wakeup.is_some() => {}
            _ = tick.tick() => ctx.tick().await,
        }
    }
}

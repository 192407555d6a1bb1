//! The dashboard: what the window draws, built from the core's snapshot. Sent by the
//! `dashboard` command and with every `dashboard` event.

use crate::bridge::Core;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tether::companion::pair::PairingView;
use tether::companion::tray::{self, AgentView, TraySummary};

/// What the window draws: the tray's summary, every agent, and the notification pause.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Icon kind and words, the same as the tray shows.
    pub summary: TraySummary,
    /// Every paired agent with its credentials.
    pub agents: Vec<AgentView>,
    /// Notifications are paused until then.
    pub paused_until: Option<DateTime<Utc>>,
    /// Each paired agent's URL and pinned certificate fingerprint.
    pub pairings: Vec<PairingView>,
}

impl Dashboard {
    /// The dashboard for the core's current snapshot.
    pub fn of(core: &Core) -> Dashboard {
        let agents = core.snapshot();
        Dashboard {
            summary: tray::summarize(&agents, Utc::now()),
            agents,
            paused_until: core.paused_until(),
            pairings: core.pairings(),
        }
    }
}

//! The agent.toml that `agent.rs` and `agent_ops.rs` both read: its default path and
//! loading it with the fix in the error. Its own file so neither command file imports the
//! other for it.

use crate::agent::config::{self, AgentConfig};
use anyhow::Context;
use std::path::Path;

/// Default config path (also `TETHER_AGENT_CONFIG`).
pub(super) const DEFAULT_CONFIG: &str = "/etc/tether/agent.toml";

/// Reads and checks the agent config at `path`; the error says how to write an example.
pub(super) fn load(path: &Path) -> anyhow::Result<AgentConfig> {
    config::parse(path).with_context(|| {
        format!(
            "cannot use the agent config {}; write an example with `tether agent init --config {}`",
            path.display(),
            path.display()
        )
    })
}

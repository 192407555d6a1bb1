//! Wire types shared by the agent daemon and the companion, and the protocol version.
//!
//! Both sides use these types, so a change here is a change to the protocol. New fields
//! are `#[serde(default)]` so an older peer still parses a newer reply; anything that
//! breaks that rule bumps [`PROTOCOL_VERSION`].
//!
//! Files:
//! - `protocol.rs`: this map and the protocol's constants;
//! - `protocol/state.rs`: credential states, re-auth kinds, [`ErrorInfo`], credential names;
//! - `protocol/event.rs`: the event stream's [`Event`];
//! - `protocol/health.rs`: the health report and its parts;
//! - `protocol/reauth.rs`: the redirect requirement and the re-auth and paste messages;
//! - `protocol/broker.rs`: the user's agent's access-token and refusal messages;
//! - `protocol/error.rs`: [`ApiError`] and its [`ErrorCode`];
//! - `protocol/pairing.rs`: pairing codes and the pair exchange;
//! - `protocol/human.rs`: challenges, pending work and session reports from the user's agent.

mod broker;
mod error;
mod event;
mod health;
mod human;
mod pairing;
mod reauth;
mod state;
pub use broker::{AccessTokenReply, RejectedReply, RejectedReport};
pub use error::{ApiError, ErrorCode};
pub use event::Event;
pub use health::{
    location_problem_words, Cadence, ChannelHealth, CredentialHealth, HaHealth, HealthReport,
    HookHealth, LocationHealth, ProbeHealth, VaultHealth,
};
pub use human::{
    check_link, Challenge, ChallengeError, ChallengeOrigin, PendingWork, PostedChallenge,
    SessionReport, MAX_CHALLENGE_TEXT, MAX_QR_PAYLOAD,
};
pub use pairing::{PairRequest, PairResponse, PairingCode, PairingCodeError, PAIR_LINK_PREFIX};
pub use reauth::{ReauthComplete, ReauthStart, RedirectPort, RedirectRequirement, SecretPut};
pub use state::{valid_credential_name, CredentialState, ErrorInfo, ReauthKind};

/// Version of the HTTP protocol spoken under [`API_PREFIX`]. Every health reply carries it.
pub const PROTOCOL_VERSION: u32 = 1;
/// Every authenticated route lives under this prefix.
pub const API_PREFIX: &str = "/v1";
/// Largest request body the daemon accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

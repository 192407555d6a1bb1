//! A moment in the owner's words and time zone, as notifications, `tether status` and an
//! agent's challenge all say it. Its own file because `notice.rs` builds on `challenge.rs`
//! (a challenge's notification texts), so the challenge cannot take it from the notice.

use chrono::{DateTime, Local, Utc};

/// "09:02" today, "Mon 3 Jun 09:02" otherwise (local time).
pub fn when(t: DateTime<Utc>, now: DateTime<Local>) -> String {
    let local = t.with_timezone(&Local);
    if local.date_naive() == now.date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%a %-d %b %H:%M").to_string()
    }
}

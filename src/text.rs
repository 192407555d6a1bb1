//! Text from outside made fit to show: a provider's error, an agent's words, an id
//! token's names. Printable characters only, cut to a length.
//!
//! It sits below `protocol` and `provider`, which both clean what they pass on (the wire
//! types clean an agent's report, the classifier a provider's answer); `provider` keeps
//! `clean_text` as a re-export for its older callers.

/// Keeps printable characters only (control characters become spaces) and cuts at `max`
/// characters, marking a cut with `…`.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

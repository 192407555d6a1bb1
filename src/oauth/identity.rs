//! Who a grant is for: a stable id that the identity pin compares, and a label the owner
//! recognises, shown and never compared.
//!
//! Labels change and collide: two Spotify users may share a `display_name`, a GitHub login
//! can be renamed and taken by someone else, an e-mail the provider has not verified could
//! be anyone's. The id is what the provider never reassigns: OpenID Connect's `iss` + `sub`,
//! the provider's numeric or opaque user id (GitHub `id`, Spotify `id`, Microsoft `id`,
//! Telegram's bot id, Slack's team and user ids), a YouTube channel id.

use serde_json::Value;

/// The account a provider named for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What stays the same for this account at this provider (compared by the pin).
    pub id: String,
    /// What the owner recognises (a login, an e-mail, a channel title); display only.
    pub label: String,
}

impl Identity {
    /// An identity from a provider that gives no stable id beyond its label: the label is
    /// the best there is, and is compared.
    pub fn label_only(label: String) -> Self {
        Identity {
            id: label.clone(),
            label,
        }
    }
}

/// The first of `pointers` in `j` that holds a non-empty string or a number, as a string
/// (GitHub's and Telegram's ids are JSON numbers, most others strings).
pub(crate) fn stable_id(j: &Value, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|p| match j.pointer(p)? {
        Value::String(s) if !s.trim().is_empty() => {
            Some(crate::text::clean_text(s, 200)).filter(|s| !s.is_empty())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_string_or_a_number_and_never_empty() {
        let j = serde_json::json!({"id": 583231, "sub": "", "data": {"id": "17"}});
        assert_eq!(stable_id(&j, &["/sub", "/id"]), Some("583231".into()));
        assert_eq!(stable_id(&j, &["/sub", "/data/id"]), Some("17".into()));
        assert_eq!(stable_id(&j, &["/sub", "/nothing"]), None);
    }
}

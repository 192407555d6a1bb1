//! A token endpoint's answer as a vault record, the one place it is turned into one: a
//! first grant (an authorization-code or device exchange, `tether oauth`) and a refresh
//! merged onto the record it refreshed.

use crate::oauth::{Identity, TokenSet};
use crate::vault::Record;
use chrono::Utc;

/// The scopes a first grant covers: the answer's `scope`, or, when it names none, what
/// was asked for (RFC 6749 §5.1).
pub fn granted<'a>(ts: &'a TokenSet, requested: &'a [String]) -> &'a [String] {
    if ts.scopes.is_empty() {
        requested
    } else {
        &ts.scopes
    }
}

/// The record a first grant makes for `account` (its label and id); its scopes are
/// [`granted`]'s.
pub fn from_grant(
    name: &str,
    provider: &str,
    account: Option<&Identity>,
    ts: &TokenSet,
    requested: &[String],
) -> Record {
    let mut r = Record::new(name, provider);
    r.account = account.map(|a| a.label.clone());
    r.account_id = account.map(|a| a.id.clone());
    r.access_token = Some(ts.access_token.clone());
    r.refresh_token = ts.refresh_token.clone();
    r.token_type = ts.token_type.clone();
    r.scopes = granted(ts, requested).to_vec();
    r.expires_at = ts.expires_at;
    r.refresh_expires_at = ts.refresh_expires_at;
    r.extras = ts.extras.clone();
    r
}

/// `record` after a refresh answered `ts`. What the answer does not say is kept: the
/// refresh token when none came back, the scopes when it names none, the refresh
/// token's end when it gives none; extras are merged over the old ones.
pub fn refreshed(record: &Record, ts: &TokenSet) -> Record {
    let mut next = record.clone();
    next.access_token = Some(ts.access_token.clone());
    next.refresh_token = ts
        .refresh_token
        .clone()
        .or_else(|| record.refresh_token.clone());
    next.token_type = ts.token_type.clone();
    if !ts.scopes.is_empty() {
        next.scopes = ts.scopes.clone();
    }
    next.obtained_at = Utc::now();
    next.expires_at = ts.expires_at;
    if ts.refresh_expires_at.is_some() {
        next.refresh_expires_at = ts.refresh_expires_at;
    }
    for (k, v) in &ts.extras {
        next.extras.insert(k.clone(), v.clone());
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};

    /// An answer with only what RFC 6749 requires: no `scope`, no `expires_in`, no
    /// refresh token.
    fn bare(access: &str) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new(access),
            refresh_token: None,
            rotated: false,
            token_type: "Bearer".into(),
            expires_at: None,
            refresh_expires_at: None,
            scopes: Vec::new(),
            extras: Default::default(),
            id_token: None,
        }
    }

    #[test]
    fn a_grant_without_scope_records_the_requested_scopes() {
        let asked = vec!["openid".to_owned(), "upload".to_owned()];
        let who = Identity {
            id: "https://accounts.google.com 42".into(),
            label: "a@b".into(),
        };
        let r = from_grant("yt", "google", Some(&who), &bare("at1"), &asked);
        assert_eq!(r.scopes, asked);
        assert_eq!(r.account.as_deref(), Some("a@b"));
        assert_eq!(
            r.account_id.as_deref(),
            Some("https://accounts.google.com 42")
        );
        assert_eq!(r.access_token.as_ref().map(|t| t.secret()), Some("at1"));
        assert!(r.refresh_token.is_none());

        let mut granted = bare("at2");
        granted.scopes = vec!["openid".into()];
        let r = from_grant("yt", "google", None, &granted, &asked);
        assert_eq!(r.scopes, ["openid"], "what was granted, not what was asked");
    }

    #[test]
    fn a_refresh_keeps_what_its_answer_does_not_say() {
        let mut first = bare("at1");
        first.refresh_token = Some(RefreshToken::new("rt1"));
        first.scopes = vec!["upload".into()];
        first.refresh_expires_at = Some(Utc::now());
        first.extras.insert("open_id".into(), "u1".into());
        let before = from_grant("yt", "google", None, &first, &[]);

        let mut answer = bare("at2");
        answer.extras.insert("team".into(), "t".into());
        let after = refreshed(&before, &answer);
        assert_eq!(after.access_token.as_ref().map(|t| t.secret()), Some("at2"));
        assert_eq!(
            after.refresh_token.as_ref().map(|t| t.secret()),
            Some("rt1")
        );
        assert_eq!(after.scopes, ["upload"]);
        assert_eq!(after.refresh_expires_at, before.refresh_expires_at);
        assert_eq!(after.extras.len(), 2, "{:?}", after.extras.keys());

        let mut rotated = bare("at3");
        rotated.refresh_token = Some(RefreshToken::new("rt2"));
        let after = refreshed(&after, &rotated);
        assert_eq!(
            after.refresh_token.as_ref().map(|t| t.secret()),
            Some("rt2")
        );
    }
}

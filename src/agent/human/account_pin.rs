//! The identity pin: whether a new grant (or a pasted token) is for the account the
//! credential belongs to. Pure, so the rule is tested without a provider.
//!
//! The stored record's `account_id` is compared with the new grant's [`Identity::id`];
//! labels are only shown. A grant that names no account on a pinned credential is a
//! mismatch: the pin must not open because the provider's answer (or the probe that asks
//! it) said nothing.
//!
//! Records written before ids were kept have only `account`, a label read the way
//! [`Identity::label`] still is. Such a pin is compared by label (or with an id for a
//! provider whose label is its id) once: the grant that matches it stores its id, and from
//! then on the id is compared. A label that came from an id_token's unverified e-mail no
//! longer matches (that label is not produced any more); the owner re-authorizes once with
//! `--new-account`.

use crate::oauth::Identity;
use crate::vault::Record;

/// A new grant that is not for the pinned account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The pinned account, in words.
    pub expected: String,
    /// The new grant's account, in words.
    pub got: String,
}

/// Whether a new grant must be for the pinned account, or may replace it (the owner said
/// so: `tether reauth --new-account`, `tether paste --new-account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRule {
    /// The grant must be for the account the credential is pinned to.
    SameAccount,
    /// Another account replaces the credential's.
    NewAccount,
}

impl AccountRule {
    /// From the request's `new_account` flag.
    pub fn from_flag(new_account: bool) -> AccountRule {
        if new_account {
            AccountRule::NewAccount
        } else {
            AccountRule::SameAccount
        }
    }
}

/// What the owner reads when the provider named no account for the new grant.
const UNNAMED: &str = "an account the provider did not name (its answer named none, or \
    it could not be asked just now; try again)";

/// Checks `fresh` (the account the provider named for the new grant, if any) against the
/// pin in `old` (the stored record). [`AccountRule::NewAccount`] is the owner replacing
/// the account on purpose, which passes.
pub(crate) fn check(
    old: Option<&Record>,
    fresh: Option<&Identity>,
    rule: AccountRule,
) -> Result<(), Mismatch> {
    let Some(old) = old else { return Ok(()) };
    if rule == AccountRule::NewAccount || (old.account.is_none() && old.account_id.is_none()) {
        return Ok(());
    }
    let pinned_label = old.account.as_deref().or(old.account_id.as_deref());
    let expected = |fresh: Option<&Identity>| {
        let label = pinned_label.unwrap_or_default();
        match (&old.account_id, fresh) {
            // Same words, another account: the ids tell the owner which is which.
            (Some(id), Some(f)) if f.label == label => format!("{label} (id {id})"),
            _ => label.to_owned(),
        }
    };
    let Some(fresh) = fresh else {
        return Err(Mismatch {
            expected: expected(None),
            got: UNNAMED.to_owned(),
        });
    };
    let same = match (&old.account_id, &old.account) {
        (Some(id), _) => *id == fresh.id,
        (None, Some(label)) => *label == fresh.label || *label == fresh.id,
        (None, None) => unreachable!("returned above when nothing is pinned"),
    };
    if same {
        return Ok(());
    }
    let got = if pinned_label == Some(fresh.label.as_str()) {
        format!("{} (id {})", fresh.label, fresh.id)
    } else {
        fresh.label.clone()
    };
    Err(Mismatch {
        expected: expected(Some(fresh)),
        got,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(id: &str, label: &str) -> Identity {
        Identity {
            id: id.into(),
            label: label.into(),
        }
    }

    fn pinned(id: Option<&str>, label: Option<&str>) -> Record {
        let mut r = Record::new("spotify", "spotify");
        r.account_id = id.map(str::to_owned);
        r.account = label.map(str::to_owned);
        r
    }

    #[test]
    fn two_users_with_the_same_display_name_are_told_apart() {
        let old = pinned(Some("sam-1"), Some("Sam"));
        assert_eq!(
            check(
                Some(&old),
                Some(&who("sam-1", "Sam")),
                AccountRule::SameAccount
            ),
            Ok(())
        );
        let err = check(
            Some(&old),
            Some(&who("sam-2", "Sam")),
            AccountRule::SameAccount,
        )
        .unwrap_err();
        assert_eq!(err.expected, "Sam (id sam-1)");
        assert_eq!(err.got, "Sam (id sam-2)");
        // A renamed account is still the same one.
        assert_eq!(
            check(
                Some(&old),
                Some(&who("sam-1", "Samantha")),
                AccountRule::SameAccount
            ),
            Ok(())
        );
        // On purpose, another account passes.
        assert_eq!(
            check(
                Some(&old),
                Some(&who("sam-2", "Sam")),
                AccountRule::NewAccount
            ),
            Ok(())
        );
    }

    #[test]
    fn a_grant_that_names_no_account_on_a_pinned_credential_is_refused() {
        let old = pinned(Some("583231"), Some("octocat"));
        let err = check(Some(&old), None, AccountRule::SameAccount).unwrap_err();
        assert_eq!(err.expected, "octocat");
        assert!(err.got.contains("did not name"), "{err:?}");
        // A legacy pin (label only) is pinned too.
        assert!(check(
            Some(&pinned(None, Some("octocat"))),
            None,
            AccountRule::SameAccount
        )
        .is_err());
        // Nothing pinned, nothing stored, or on purpose: passes.
        assert_eq!(
            check(Some(&pinned(None, None)), None, AccountRule::SameAccount),
            Ok(())
        );
        assert_eq!(check(None, None, AccountRule::SameAccount), Ok(()));
        assert_eq!(check(Some(&old), None, AccountRule::NewAccount), Ok(()));
    }

    #[test]
    fn a_pin_from_before_ids_is_compared_by_its_label_once() {
        let legacy = pinned(None, Some("@studio_bot (bot id 1)"));
        assert_eq!(
            check(
                Some(&legacy),
                Some(&who("1", "@studio_bot (bot id 1)")),
                AccountRule::SameAccount
            ),
            Ok(())
        );
        let err = check(
            Some(&legacy),
            Some(&who("2", "@other_bot (bot id 2)")),
            AccountRule::SameAccount,
        )
        .unwrap_err();
        assert_eq!(err.got, "@other_bot (bot id 2)");
        // A label-only provider's id is its label.
        let login = pinned(None, Some("octocat"));
        assert_eq!(
            check(
                Some(&login),
                Some(&Identity::label_only("octocat".into())),
                AccountRule::SameAccount
            ),
            Ok(())
        );
    }
}

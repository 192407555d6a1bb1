//! Deaths that a provider's *policy* causes, named for the owner: a grant ended by a rule
//! (an admin's re-authentication policy, an inactivity limit, a password change) is not a
//! revocation, keeps coming back, and is fixed by someone other than the owner at times.
//! Plain "dead" tells the owner none of that.
//!
//! Sources (also in PROVIDERS.md): Google Workspace session control answers `invalid_grant`
//! with `error_subtype: invalid_rapt` and links support.google.com/a/answer/9368756;
//! Microsoft's AADSTS codes are listed at
//! learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes (700082 expired
//! by inactivity, 50173 revoked after a password change or reset, 70043 expired under a
//! Conditional Access sign-in frequency policy).

use serde_json::{Map, Value};

/// A policy that ended a grant, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDeath {
    /// What ended it, in words (starting with the provider's code).
    pub words: &'static str,
    /// Who can stop it happening again, and how.
    pub fix: &'static str,
}

impl PolicyDeath {
    /// The description shown in health, alerts and the tray: the policy first (it is cut
    /// to length last), then what the provider said.
    pub fn describe(&self, provider_said: &str) -> String {
        if provider_said.is_empty() {
            format!("{}; {}", self.words, self.fix)
        } else {
            format!(
                "{}; {} (provider said: {provider_said})",
                self.words, self.fix
            )
        }
    }
}

const GOOGLE_RAPT: PolicyDeath = PolicyDeath {
    words: "invalid_rapt: Google Workspace's re-authentication policy (session control) ended this sign-in; it is not a revocation, and it comes back every time the policy's period runs out",
    fix: "your Workspace admin can stop it by marking the app as trusted or exempting it from re-authentication (Admin console, Google Cloud session control)",
};
const MS_INACTIVE: PolicyDeath = PolicyDeath {
    words: "AADSTS700082: Microsoft ended the refresh token after 90 days without use (inactivity rule)",
    fix: "re-authorize; a token that is used (Tether's checks use it) does not expire this way again",
};
const MS_PASSWORD: PolicyDeath = PolicyDeath {
    words: "AADSTS50173: Microsoft revoked the grant because the account's password was changed or reset",
    fix: "re-authorize with the new password",
};
const MS_SIGN_IN_FREQUENCY: PolicyDeath = PolicyDeath {
    words: "AADSTS70043: the tenant's Conditional Access sign-in frequency policy ended the refresh token",
    fix: "re-authorize; it recurs at the policy's period, which the tenant's admin sets (Conditional Access, session, sign-in frequency)",
};

/// A provider's rule for naming the policy behind a dead answer (`code`, `description`,
/// the whole error object). `classify.rs` picks the rule by the provider's classifier, so
/// this file needs nothing from the classifier.
pub type Rule = fn(&str, &str, &Map<String, Value>) -> Option<PolicyDeath>;

/// Google: Workspace session control's `invalid_grant` with the `invalid_rapt` subtype.
pub fn google(code: &str, description: &str, obj: &Map<String, Value>) -> Option<PolicyDeath> {
    let subtype = obj.get("error_subtype").and_then(Value::as_str);
    (code == "invalid_grant"
        && (subtype == Some("invalid_rapt") || description.contains("invalid_rapt")))
    .then_some(GOOGLE_RAPT)
}

/// Microsoft: the AADSTS number, in the description or in `error_codes` (whatever the
/// code says: Microsoft names its policy deaths only by number).
pub fn microsoft(_code: &str, description: &str, obj: &Map<String, Value>) -> Option<PolicyDeath> {
    let in_codes = |n: u64| {
        obj.get("error_codes")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_u64() == Some(n)))
    };
    let named = |n: u64| {
        description.contains(&format!("AADSTS{n}:"))
            || description.ends_with(&format!("AADSTS{n}"))
            || in_codes(n)
    };
    if named(700082) {
        Some(MS_INACTIVE)
    } else if named(50173) {
        Some(MS_PASSWORD)
    } else if named(70043) {
        Some(MS_SIGN_IN_FREQUENCY)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(body: &str) -> Map<String, Value> {
        serde_json::from_str(body).unwrap()
    }

    fn of(rule: Rule, body: &str) -> Option<PolicyDeath> {
        let o = obj(body);
        let code = o["error"].as_str().unwrap().to_string();
        let d = o
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        rule(&code, &d, &o)
    }

    #[test]
    fn google_session_control_is_named_with_its_fix() {
        // The body Google sends when Workspace session control ends a grant.
        let p = of(
            google,
            r#"{"error": "invalid_grant", "error_description": "reauth related error (invalid_rapt)", "error_uri": "https://support.google.com/a/answer/9368756", "error_subtype": "invalid_rapt"}"#,
        )
        .expect("named");
        let d = p.describe("reauth related error (invalid_rapt)");
        assert!(
            d.starts_with("invalid_rapt: Google Workspace's re-authentication policy"),
            "{d}"
        );
        assert!(
            d.contains("Workspace admin") && d.contains("trusted"),
            "{d}"
        );
        assert!(d.contains("not a revocation"), "{d}");
        // A plain revocation is not a policy.
        assert_eq!(
            of(
                google,
                r#"{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}"#
            ),
            None
        );
    }

    #[test]
    fn microsoft_policy_codes_are_named() {
        let inactive = of(
            microsoft,
            r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00.0000000Z and was inactive for 90.00:00:00.","error_codes":[700082]}"#,
        );
        assert_eq!(inactive, Some(MS_INACTIVE));
        // The number only in error_codes.
        let password = of(
            microsoft,
            r#"{"error":"invalid_grant","error_description":"The provided grant has expired due to it being revoked.","error_codes":[50173]}"#,
        );
        assert_eq!(password, Some(MS_PASSWORD));
        let frequency = of(
            microsoft,
            r#"{"error":"invalid_grant","error_description":"AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.","error_codes":[70043]}"#,
        );
        assert_eq!(frequency, Some(MS_SIGN_IN_FREQUENCY));
        assert!(frequency.unwrap().fix.contains("sign-in frequency"));
        // 700084 is not 70043 or 700082: unnamed.
        let other = of(
            microsoft,
            r#"{"error":"invalid_grant","error_description":"AADSTS700084: The refresh token was issued to a single page app.","error_codes":[700084]}"#,
        );
        assert_eq!(other, None);
    }
}

//! Whether a posted challenge is news to the owner: the one place that decides if a
//! challenge change raises every alert channel (a new thing to do: a new device code, a
//! new page, a new asker), only updates what the companion shows (a QR code that turned
//! over, a later expiry), or changes nothing. Pure, so the rule is tested without a daemon.
//!
//! The owner's phone must never keep a code that no longer works: a device code that
//! expired unused and was replaced, or a new `device-reauth` after a denial, is news.
//! A flow resumed after a restart re-posts the code the owner was already sent: not news.

use crate::protocol::{Challenge, ChallengeOrigin, PostedChallenge};

/// What a post means to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// Something new to do: every alert channel carries it (with its button), and the
    /// tray and `tether watch` replace what they showed.
    New,
    /// The same request with new details (a QR code that turned over, a new expiry):
    /// the companion's view is updated, no alert.
    Update,
    /// Exactly what is open already: nothing to send.
    Unchanged,
}

/// What posting `next` (by `origin`) over the open challenge `open` means. `already_told`
/// says the owner was sent this very challenge before (a device-code flow resumed after a
/// restart), so it is never news again.
pub fn news(
    open: Option<&PostedChallenge>,
    next: &Challenge,
    origin: ChallengeOrigin,
    already_told: bool,
) -> News {
    let Some(open) = open else {
        return if already_told {
            News::Update
        } else {
            News::New
        };
    };
    if open.challenge == *next && open.origin == origin {
        return News::Unchanged;
    }
    if already_told {
        return News::Update;
    }
    if open.origin != origin {
        // Another asker: the owner judges a request by who makes it.
        return News::New;
    }
    match (&open.challenge, next) {
        (
            Challenge::DeviceCode {
                verification_uri: page_a,
                user_code: code_a,
                verification_uri_complete: full_a,
                ..
            },
            Challenge::DeviceCode {
                verification_uri: page_b,
                user_code: code_b,
                verification_uri_complete: full_b,
                ..
            },
        ) => {
            if code_a != code_b || page_a != page_b || full_a != full_b {
                News::New
            } else {
                News::Update
            }
        }
        // A QR code turns over every few seconds (WhatsApp Web): the same request.
        (Challenge::Qr { .. }, Challenge::Qr { .. }) => News::Update,
        (Challenge::Url { url: a }, Challenge::Url { url: b }) if a == b => News::Update,
        (Challenge::Text { message: a }, Challenge::Text { message: b }) if a == b => News::Update,
        // Another page, another message or another kind of request.
        _ => News::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn code(c: &str) -> Challenge {
        Challenge::DeviceCode {
            verification_uri: "https://id.example/device".into(),
            user_code: c.into(),
            verification_uri_complete: Some(format!("https://id.example/device?user_code={c}")),
            expires_at: None,
        }
    }

    fn posted(c: Challenge, origin: ChallengeOrigin) -> PostedChallenge {
        PostedChallenge {
            challenge: c,
            since: Utc::now(),
            posted_at: Utc::now(),
            revision: 1,
            origin,
        }
    }

    const D: ChallengeOrigin = ChallengeOrigin::Daemon;
    const A: ChallengeOrigin = ChallengeOrigin::Agent;

    #[test]
    fn a_first_challenge_is_news_unless_the_owner_was_sent_it_before_a_restart() {
        assert_eq!(news(None, &code("ABCD"), D, false), News::New);
        assert_eq!(news(None, &code("ABCD"), D, true), News::Update);
    }

    #[test]
    fn a_new_device_code_replacing_an_expired_one_is_news() {
        let open = posted(code("ABCD"), D);
        assert_eq!(news(Some(&open), &code("WXYZ"), D, false), News::New);
        // The same code again (a resumed poll) is nothing new.
        assert_eq!(news(Some(&open), &code("ABCD"), D, false), News::Unchanged);
    }

    #[test]
    fn a_new_sign_in_after_a_denial_is_news() {
        let ended = posted(
            Challenge::Text {
                message: "the sign-in ended (access_denied)".into(),
            },
            D,
        );
        assert_eq!(news(Some(&ended), &code("NEW1"), D, false), News::New);
        // And the word that a flow ended replaces a code: news too.
        let open = posted(code("ABCD"), D);
        assert_eq!(
            news(
                Some(&open),
                &Challenge::Text {
                    message: "ended".into()
                },
                D,
                false
            ),
            News::New
        );
    }

    #[test]
    fn a_qr_code_that_turned_over_is_an_update_not_an_alert() {
        let open = posted(
            Challenge::Qr {
                payload: "one".into(),
                expires_at: None,
            },
            A,
        );
        let next = Challenge::Qr {
            payload: "two".into(),
            expires_at: None,
        };
        assert_eq!(news(Some(&open), &next, A, false), News::Update);
    }

    #[test]
    fn another_page_or_another_asker_is_news() {
        let open = posted(
            Challenge::Url {
                url: "https://a.example/".into(),
            },
            A,
        );
        let other = Challenge::Url {
            url: "https://b.example/".into(),
        };
        assert_eq!(news(Some(&open), &other, A, false), News::New);
        assert_eq!(news(Some(&open), &open.challenge, D, false), News::New);
        // Only the expiry changed: an update.
        let a = posted(code("ABCD"), D);
        let mut later = code("ABCD");
        if let Challenge::DeviceCode { expires_at, .. } = &mut later {
            *expires_at = Some(Utc::now());
        }
        assert_eq!(news(Some(&a), &later, D, false), News::Update);
    }
}

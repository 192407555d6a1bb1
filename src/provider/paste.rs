//! The shape of a pasted token, checked before the token is sent anywhere.
//!
//! A pasted token goes into a request (Telegram puts it in the URL path) and into rendered
//! files the agent reads; a "token" with `/`, `#`, `$(…)` or spaces in it is either a
//! mistake or an attack, and is refused before any request is made.

use serde::{Deserialize, Serialize};

/// Longest pasted token accepted (GitHub fine-grained tokens are 93 characters).
const MAX_LEN: usize = 512;

/// What a pasted token must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasteFormat {
    /// A Telegram bot token: `<bot id>:<secret>`, `^[0-9]+:[A-Za-z0-9_-]+$`
    /// (core.telegram.org/bots/api#authorizing-your-bot).
    Telegram,
    /// A GitHub token with one of GitHub's prefixes (`ghp_`, `github_pat_`, `gho_`, `ghu_`,
    /// `ghs_`, `ghr_`) and its alphabet `[A-Za-z0-9_]`
    /// (github.blog/2021-04-05-behind-githubs-new-authentication-token-formats).
    #[serde(rename = "github")]
    GitHub,
    /// Any other token: `[A-Za-z0-9._~+/=-]`, no spaces, quotes or shell characters.
    Opaque,
}

/// GitHub's token prefixes.
const GITHUB_PREFIXES: &[&str] = &["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

/// A pasted value that is not a token of the expected shape; the text says what such a
/// token looks like (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPaste(pub String);

impl PasteFormat {
    /// Checks `token`; the error says what a token of this kind looks like (never the
    /// token itself).
    pub fn check(self, token: &str) -> Result<(), BadPaste> {
        if token.is_empty() {
            return Err(BadPaste(
                "the pasted token is empty; copy the whole token again".into(),
            ));
        }
        if token.len() > MAX_LEN {
            return Err(BadPaste(format!(
                "the pasted token is longer than {MAX_LEN} characters; copy only the token"
            )));
        }
        let ok = match self {
            PasteFormat::Telegram => match token.split_once(':') {
                Some((id, secret)) => {
                    !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !secret.is_empty()
                        && secret
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                }
                None => false,
            },
            PasteFormat::GitHub => GITHUB_PREFIXES.iter().any(|p| {
                token.strip_prefix(p).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
            }),
            PasteFormat::Opaque => token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~+/=-".contains(&b)),
        };
        if ok {
            return Ok(());
        }
        Err(BadPaste(match self {
            PasteFormat::Telegram => "the pasted token is not a telegram bot token (digits, `:`, then letters, digits, `_` or `-`, as @BotFather shows it); copy the whole token again".into(),
            PasteFormat::GitHub => "the pasted token is not a github token (it starts with ghp_, github_pat_, gho_, ghu_, ghs_ or ghr_ and has only letters, digits and `_`); copy the whole token again".into(),
            PasteFormat::Opaque => "the pasted token has characters no token has (spaces, quotes or shell characters); copy only the token".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_tokens() {
        let t = PasteFormat::Telegram;
        assert!(t
            .check("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
            .is_ok());
        assert!(t.check("1:a-_Z").is_ok());
        for bad in [
            "",
            "123456789",
            ":abc",
            "12a:abc",
            "123:",
            "123:abc/getMe#$(touch /tmp/x)",
            "123:abc def",
            "123:abc?x=1",
            "123:abc:def",
        ] {
            assert!(t.check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn github_tokens() {
        let g = PasteFormat::GitHub;
        assert!(g.check("ghp_16C7e42F292c6912E7710c838347Ae178B4a").is_ok());
        assert!(g
            .check("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz")
            .is_ok());
        assert!(g.check("gho_abc").is_ok());
        for bad in [
            "ghp_",
            "ghx_abc",
            "abc",
            "ghp_abc-def",
            "ghp_abc$(id)",
            "ghp_a b",
        ] {
            assert!(g.check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn opaque_tokens_have_no_shell_characters() {
        let o = PasteFormat::Opaque;
        assert!(o.check("ya29.a0AfB_byC-x/y+z=").is_ok());
        for bad in [
            "a b", "a'b", "a\"b", "$(x)", "`x`", "a;b", "a\nb", "a#b", "a?b",
        ] {
            assert!(o.check(bad).is_err(), "{bad:?}");
        }
        assert!(o.check(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn errors_never_carry_the_token() {
        let e = PasteFormat::Telegram
            .check("123:secretvalue/evil")
            .unwrap_err();
        assert!(!e.0.contains("secretvalue"), "{e}");
    }
}

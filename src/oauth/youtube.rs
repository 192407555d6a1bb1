//! Which YouTube channel a grant acts as: `channels.list?part=snippet&mine=true` with the
//! new access token. A Google account can own several channels (a brand account beside
//! the personal one); the channel, not the e-mail, is what an uploading agent needs to
//! stay the same across re-authorizations.

use super::error::OAuthError;
use super::identity::Identity;
use super::token::transport_error;
use crate::provider::{ChannelLookup, ErrorClass};
use crate::secret::AccessToken;
use serde_json::Value;

/// The channel `token` acts as: its id (`UC…`), labelled "Title (UC…)"; `None` when the
/// answer lists none (an account without a channel).
pub async fn channel(
    http: &reqwest::Client,
    provider: &str,
    lookup: &ChannelLookup,
    token: &AccessToken,
) -> Result<Option<Identity>, OAuthError> {
    let response = http
        .get(lookup.url.clone())
        .bearer_auth(token.secret())
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = response.status();
    // The status first: an error page need not be JSON.
    if !status.is_success() {
        return Err(OAuthError::new(
            provider,
            ErrorClass::TRANSIENT,
            "channel_lookup_failed",
            &format!(
                "the YouTube channels endpoint answered HTTP {}",
                status.as_u16()
            ),
        ));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    Ok(identity(&body))
}

/// The id and "Title (UC…)" of the first channel in a `channels.list` answer.
fn identity(body: &Value) -> Option<Identity> {
    let first = body.get("items")?.as_array()?.first()?;
    let id = first.get("id")?.as_str()?;
    let label = match first
        .pointer("/snippet/title")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        Some(title) => format!("{title} ({id})"),
        None => id.to_owned(),
    };
    Some(Identity {
        id: id.to_owned(),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_channel_is_its_title_and_id_and_an_account_without_one_names_none() {
        let answer = json!({"kind": "youtube#channelListResponse",
            "items": [{"kind": "youtube#channel", "id": "UCbrand", "snippet": {"title": "Brand Channel"}}]});
        let brand = identity(&answer).unwrap();
        assert_eq!(
            (brand.id.as_str(), brand.label.as_str()),
            ("UCbrand", "Brand Channel (UCbrand)")
        );
        let untitled = json!({"items": [{"id": "UCx"}]});
        assert_eq!(identity(&untitled).map(|i| i.label).as_deref(), Some("UCx"));
        assert_eq!(identity(&json!({"items": []})), None);
        assert_eq!(identity(&json!({"pageInfo": {"totalResults": 0}})), None);
    }

    #[test]
    fn the_google_preset_asks_only_for_youtube_grants() {
        let google = crate::provider::preset("google").unwrap();
        let lookup = google.youtube_channels.expect("google looks channels up");
        assert!(!lookup.applies_to(&["openid".into(), "email".into()]));
        assert!(lookup.applies_to(&["https://www.googleapis.com/auth/youtube.upload".into()]));
    }
}

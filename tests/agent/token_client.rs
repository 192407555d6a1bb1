//! The agent's side of the client (`AgentClient::access_token` and `rejected`, what
//! `tether token` uses) against the real daemon over pinned TLS.

use super::harness::TestAgent;
use tether::client::{AgentClient, AgentEndpoint, ClientError};
use tether::protocol::{ErrorCode, RejectedReport};
use tether::secret::ApiToken;

const BODY: &str = "[[credentials]]\nname = \"bot\"\nprovider = \"generic\"\nclient_id = \"c\"\nrefresh_interval = \"1h\"\n[credentials.overrides]\nauth_url = \"http://127.0.0.1:9/a\"\ntoken_url = \"http://127.0.0.1:9/t\"\n";

async fn agent() -> TestAgent {
    TestAgent::start_in(tempfile::tempdir().unwrap(), "", BODY, |d| {
        let mut r = tether::vault::Record::new("bot", "generic");
        r.access_token = Some(tether::secret::AccessToken::new("at-for-the-client"));
        r.refresh_token = Some(tether::secret::RefreshToken::new("rt"));
        r.expires_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        super::harness::seed(d, r);
    })
    .await
}

fn client(a: &TestAgent, token: &str) -> AgentClient {
    let endpoint = AgentEndpoint {
        name: "studio".into(),
        url: a.base.clone(),
        fingerprint: Some(a.daemon.tls().expect("tls on").fingerprint.clone()),
    };
    AgentClient::new(&endpoint, Some(ApiToken::new(token))).unwrap()
}

#[tokio::test]
async fn an_agent_token_gets_an_access_token_and_reports_a_refusal() {
    let a = agent().await;
    let c = client(&a, &a.agent);
    let reply = c.access_token("bot").await.unwrap();
    assert_eq!(reply.credential, "bot");
    assert_eq!(reply.access_token.secret(), "at-for-the-client");

    // The refusal report answers with the credential after a confirming refresh test;
    // the token endpoint here is closed, so no fresh token comes back.
    let reply = c.rejected("bot", &RejectedReport::default()).await.unwrap();
    assert_eq!(reply.credential.name, "bot");
    assert!(reply.token.is_none(), "{reply:?}");

    // The daemon's own words for an unknown credential come through typed.
    match c.access_token("none").await {
        Err(e @ ClientError::Api { .. }) => {
            assert_eq!(e.api_code(), Some(ErrorCode::NotFound), "{e}");
            assert!(
                e.to_string().contains("credential none is not configured"),
                "{e}"
            );
        }
        r => panic!("expected the daemon's error, got {r:?}"),
    }
    // A device token is not an agent token.
    let device = client(&a, &a.device);
    assert!(device.access_token("bot").await.is_err());
}

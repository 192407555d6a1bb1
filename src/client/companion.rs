//! The companion's calls (device token): pair, health, re-authorization, a pasted
//! secret, "check now", and the event stream.

use super::connection::AgentClient;
use super::error::ClientError;
use super::sse::SseDecoder;
use crate::protocol::{
    CredentialHealth, Event, HealthReport, PairRequest, PairResponse, ReauthComplete, ReauthStart,
    SecretPut, PROTOCOL_VERSION,
};
use futures_util::{Stream, StreamExt};

impl AgentClient {
    /// `POST /v1/pair`.
    pub async fn pair(&self, req: &PairRequest) -> Result<PairResponse, ClientError> {
        let resp: PairResponse = self
            .send_json("pair", self.http.post(self.api("pair")).json(req))
            .await?;
        if resp.protocol != PROTOCOL_VERSION {
            return Err(self.mismatch(resp.protocol));
        }
        Ok(resp)
    }

    /// `GET /v1/health`, with the protocol version checked.
    pub async fn health(&self) -> Result<HealthReport, ClientError> {
        let report: HealthReport = self
            .send_json(
                "health",
                self.request(reqwest::Method::GET, self.api("health")),
            )
            .await?;
        if report.protocol != PROTOCOL_VERSION {
            return Err(self.mismatch(report.protocol));
        }
        Ok(report)
    }

    /// `POST /v1/credentials/{name}/reauth`.
    pub async fn start_reauth(&self, credential: &str) -> Result<ReauthStart, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "reauth",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/reauth")),
            ),
        )
        .await
    }

    /// `POST /v1/credentials/{name}/device-reauth`: the daemon starts a device-code
    /// re-authorization and posts its code as the credential's challenge; returns the
    /// credential's health (with that challenge).
    pub async fn device_reauth(&self, credential: &str) -> Result<CredentialHealth, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "device re-authorization",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/device-reauth")),
            ),
        )
        .await
    }

    /// `POST /v1/reauth/{session}/complete`; returns the credential's new health.
    pub async fn complete_reauth(
        &self,
        session: &str,
        body: &ReauthComplete,
    ) -> Result<CredentialHealth, ClientError> {
        let session: String = url::form_urlencoded::byte_serialize(session.as_bytes()).collect();
        self.send_json(
            "reauth completion",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("reauth/{session}/complete")),
            )
            .json(body),
        )
        .await
    }

    /// `PUT /v1/credentials/{name}/secret`; returns the credential's new health.
    pub async fn put_secret(
        &self,
        credential: &str,
        body: &SecretPut,
    ) -> Result<CredentialHealth, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "secret push",
            self.request(
                reqwest::Method::PUT,
                self.api(&format!("credentials/{credential}/secret")),
            )
            .json(body),
        )
        .await
    }

    /// `POST /v1/credentials/{name}/check`: asks the daemon to check the credential now
    /// (a tray's "Check now"); returns its health afterwards.
    pub async fn check_now(&self, credential: &str) -> Result<CredentialHealth, ClientError> {
        self.check_name(credential)?;
        self.send_json(
            "check",
            self.request(
                reqwest::Method::POST,
                self.api(&format!("credentials/{credential}/check")),
            ),
        )
        .await
    }

    /// `GET /v1/events`: a stream of decoded events. The stream ends when the connection
    /// does; undecodable events are skipped (a newer daemon may send new event types).
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<Event, ClientError>> + Send + 'static, ClientError> {
        let resp = self
            .request(reqwest::Method::GET, self.api("events"))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let resp = self.check_status(resp).await?;
        let me = self.clone();
        let bytes = resp.bytes_stream();
        let stream = futures_util::stream::unfold(
            (
                bytes,
                SseDecoder::default(),
                std::collections::VecDeque::<String>::new(),
                me,
            ),
            |(mut bytes, mut dec, mut queue, me)| async move {
                loop {
                    while let Some(data) = queue.pop_front() {
                        match serde_json::from_str::<Event>(&data) {
                            Ok(ev) => return Some((Ok(ev), (bytes, dec, queue, me))),
                            Err(e) => {
                                tracing::debug!(agent = %me.name(), "skipping an event we cannot read: {e}")
                            }
                        }
                    }
                    match bytes.next().await? {
                        Ok(chunk) => match dec.feed(&chunk) {
                            Ok(done) => queue.extend(done),
                            Err(source) => {
                                let err = ClientError::Stream {
                                    agent: me.name().to_string(),
                                    source,
                                };
                                return Some((Err(err), (bytes, SseDecoder::default(), queue, me)));
                            }
                        },
                        Err(e) => {
                            let err = me.transport_error(e);
                            return Some((Err(err), (bytes, dec, queue, me)));
                        }
                    }
                }
            },
        );
        Ok(stream)
    }
}

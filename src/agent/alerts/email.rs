//! The e-mail channel: one plain-text message to every recipient through an SMTP server,
//! STARTTLS by default, implicit TLS on request, plain only to a loopback relay.

use super::config::{EmailConfig, TlsMode};
use super::error::{AlertsConfigError, ChannelError};
use super::http::is_loopback_host;
use super::secret::{ChannelSecret, SecretSource};
use super::text::AlertText;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;

/// A ready e-mail channel.
pub(crate) struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Kept only so `Debug` can say whether a login is used; lettre holds the copy it sends.
    password: Option<ChannelSecret>,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("host", &self.host)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            )
            .field("password", &self.password)
            .finish()
    }
}

impl EmailChannel {
    /// Checks the config, reads the password and prepares the transport (no connection yet).
    pub(crate) fn new(cfg: &EmailConfig) -> Result<Self, AlertsConfigError> {
        let invalid = |problem: String| AlertsConfigError::Invalid {
            channel: cfg.name.clone(),
            problem,
        };
        let host = cfg.smtp_host.trim();
        if host.is_empty() {
            return Err(invalid("smtp_host is empty".into()));
        }
        if cfg.tls == TlsMode::None && !is_loopback_host(host) {
            return Err(invalid(format!(
                "tls = \"none\" would send the password and alerts in clear text to {host}; \
                 use tls = \"starttls\" (port 587) or \"tls\" (port 465); \"none\" is only for a relay on 127.0.0.1"
            )));
        }
        let port = cfg.smtp_port.unwrap_or(cfg.tls.default_port());
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| invalid(format!("from address {:?} is not valid ({e})", cfg.from)))?;
        if cfg.to.is_empty() {
            return Err(invalid("to is empty; list at least one recipient".into()));
        }
        let to = cfg
            .to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>()
                    .map_err(|e| invalid(format!("recipient {t:?} is not valid ({e})")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let password = SecretSource {
            channel: &cfg.name,
            what: "smtp password",
            file_field: "password_file",
            env_field: "password_env",
            file: cfg.password_file.as_deref(),
            env: cfg.password_env.as_deref(),
        };
        let password = match &cfg.username {
            Some(_) => Some(password.read_required()?),
            None if password.file.is_some() || password.env.is_some() => {
                return Err(invalid(
                    "a password source is set but no username; set username too".into(),
                ))
            }
            None => None,
        };

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.to_string()).port(port);
        if cfg.tls != TlsMode::None {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).map_err(|source| AlertsConfigError::SecretFile {
                    channel: cfg.name.clone(),
                    what: "ca certificate",
                    path: ca.clone(),
                    source,
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    invalid(format!(
                        "ca_file {} is not a PEM certificate ({e})",
                        ca.display()
                    ))
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build()
                .map_err(|e| invalid(format!("could not set up TLS for {host} ({e})")))?;
            builder = builder.tls(match cfg.tls {
                // Required, not Opportunistic: a server that drops STARTTLS must not get
                // the password in clear text.
                TlsMode::Starttls => Tls::Required(params),
                TlsMode::Tls => Tls::Wrapper(params),
                TlsMode::None => unreachable!("checked by the enclosing if"),
            });
        }
        if let (Some(user), Some(pass)) = (&cfg.username, &password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), pass.secret().to_string()));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            host: format!("{host}:{port}"),
            from,
            to,
            password,
        })
    }

    /// SMTP host and port.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Sends one alert as one e-mail to all recipients.
    pub(crate) async fn send(&self, text: &AlertText) -> Result<(), ChannelError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(text.title.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .body(text.body.clone())
            .map_err(ChannelError::Email)?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|source| ChannelError::Smtp {
                host: self.host.clone(),
                source,
            })
    }
}

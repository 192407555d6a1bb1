//! A loopback HTTP server that answers with providers' documented responses (status,
//! headers, body exactly as the provider sends them) and records what it was sent.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use tiny_http::{Header, Response, Server};
use url::Url;

/// One canned answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_owned(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

/// The server; stops when dropped.
pub struct Canned {
    base: Url,
    server: Arc<Server>,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Canned {
    /// Binds 127.0.0.1:0 and serves until dropped. Unknown paths get 404.
    pub fn start() -> Canned {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local addr").port();
        let server = Arc::new(Server::from_listener(tcp, None).expect("tiny_http server"));
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (s, r, log) = (server.clone(), routes.clone(), seen.clone());
        std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let url = req.url().to_owned();
                log.lock().unwrap().push(Seen {
                    method: req.method().to_string(),
                    url: url.clone(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let path = url.split('?').next().unwrap_or_default().to_owned();
                let answer = r.lock().unwrap().get(&path).cloned();
                let response = match answer {
                    Some(a) => {
                        let mut resp = Response::from_string(a.body).with_status_code(a.status);
                        for (k, v) in a.headers {
                            resp = resp.with_header(
                                Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                            );
                        }
                        resp
                    }
                    None => Response::from_string("not found").with_status_code(404),
                };
                let _ = req.respond(response);
            }
        });
        Canned {
            base: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            server,
            routes,
            seen,
        }
    }

    /// Serves `answer` on `path` from now on.
    pub fn route(&self, path: &str, answer: Answer) {
        self.routes.lock().unwrap().insert(path.to_owned(), answer);
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

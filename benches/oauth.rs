//! OAuth benchmark: loopback listener latency ("listener started" → "callback validated")
//! and token round trips (exchange, refresh) against the real oidc-provider on 127.0.0.1.
//!
//! Run with `cargo bench --bench oauth` (needs Node and `npm ci` in
//! tests/fixtures/oidc-provider). Prints p50 / p99 / mean; asserts nothing about time.

#[allow(dead_code)]
#[path = "../tests/util/oidc.rs"]
mod oidc;

use oidc::{browser_get, OidcOptions, OidcProvider};
use std::time::{Duration, Instant};
use tether::oauth::{exchange, refresh, AuthorizationRequest, CallbackOutcome, LoopbackListener};

const WARMUP: usize = 5;
const RUNS: usize = 100;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:<44} n={:<4} p50={:>9.3} ms  p99={:>9.3} ms  mean={:>9.3} ms",
        samples.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
}

fn main() {
    if !oidc::available() {
        eprintln!("skipped: {}", oidc::MISSING);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let server = OidcProvider::start(OidcOptions::default());
    let provider = server.provider();
    let client = server.client();
    let http = tether::oauth::http_client();

    let mut listener_times = Vec::new();
    let mut exchange_times = Vec::new();
    let mut refresh_times = Vec::new();
    let mut flow_times = Vec::new();
    for i in 0..WARMUP + RUNS {
        let flow_start = Instant::now();
        let (pending, auth_url) = AuthorizationRequest::new(&provider, &client, &[]).unwrap();
        let listener =
            LoopbackListener::bind(&provider.requirement(), pending.state.clone()).unwrap();
        let redirect_uri = listener.redirect_uri();
        let waiting = tokio::task::spawn_blocking(move || listener.wait(Duration::from_secs(30)));
        let callback = server
            .consent(&auth_url.with_redirect_uri(&redirect_uri))
            .await;
        let browser = tokio::spawn(async move { browser_get(&callback).await });
        let pending_cb = waiting.await.unwrap().expect("callback");

        let t = Instant::now();
        let tokens = exchange(
            &http,
            &provider,
            &client,
            pending_cb.code().clone(),
            pending.verifier,
            pending_cb.redirect_uri(),
        )
        .await
        .expect("exchange");
        let exchange_time = t.elapsed();
        pending_cb.respond(CallbackOutcome::Success {
            title: "Done".into(),
            detail: String::new(),
        });
        browser.await.unwrap();
        let flow_time = flow_start.elapsed();

        let t = Instant::now();
        refresh(
            &http,
            &provider,
            &client,
            tokens.refresh_token.as_ref().unwrap(),
        )
        .await
        .expect("refresh");
        let refresh_time = t.elapsed();
        if i >= WARMUP {
            exchange_times.push(exchange_time);
            refresh_times.push(refresh_time);
            flow_times.push(flow_time);
        }
    }
    // The listener alone: bind ("listener started") until wait() hands back the validated
    // callback, with the browser request sent as soon as the port is known.
    let state = "bench-state-0123456789abcdef0123456789abcdef".to_owned();
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let listener = LoopbackListener::bind(&provider.requirement(), state.clone()).unwrap();
        let url =
            url::Url::parse(&format!("{}?code=c&state={state}", listener.redirect_uri())).unwrap();
        let waiting = tokio::task::spawn_blocking(move || {
            let r = listener.wait(Duration::from_secs(30));
            (r, Instant::now())
        });
        let browser = tokio::spawn(async move { browser_get(&url).await });
        let (pending_cb, validated) = waiting.await.unwrap();
        let elapsed = validated.duration_since(started);
        pending_cb
            .expect("callback")
            .respond(CallbackOutcome::Success {
                title: "Done".into(),
                detail: String::new(),
            });
        browser.await.unwrap();
        if i >= WARMUP {
            listener_times.push(elapsed);
        }
    }
    println!(
        "oauth benchmark against oidc-provider at {}",
        server.issuer()
    );
    report("listener started -> callback validated", listener_times);
    report("exchange round trip (code + PKCE)", exchange_times);
    report("refresh round trip", refresh_times);
    report("whole flow (incl. consent redirects)", flow_times);
}

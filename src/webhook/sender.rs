//! Delivery: a bounded queue and one plain std thread per URL, so that [`WebhookSender::send`]
//! never blocks the control thread and a slow or dead endpoint delays only its own queue.
//!
//! Each worker POSTs its events in order. An attempt that fails with a transport error, a
//! timeout, 408, 429 or 5xx is retried after a backoff that doubles; any other non-2xx
//! answer is final. Every request is bounded by [`SenderConfig::request_timeout`]
//! (connect, send and the whole response together), so a hanging endpoint costs at most
//! `attempts × request_timeout` plus the backoffs per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use livekit_protocol as lk;
use ureq::http::{StatusCode, Uri};

use super::sign::{encode, CONTENT_TYPE, USER_AGENT};

/// A warning is logged for the first dropped event and then once per this many.
const DROP_WARN_EVERY: u64 = 100;

/// Tuning of a [`WebhookSender`]; [`Default`] is what [`WebhookSender::start`] uses.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Events queued per URL before new ones are dropped (default 1024).
    pub queue_capacity: usize,
    /// Attempts per event and URL, the first included (default 4: one try, three retries).
    pub attempts: u32,
    /// Wait before the first retry, doubled before each next one (default 0.5 s: 0.5, 1, 2 s).
    pub backoff: Duration,
    /// Bound on one request, from connect to the end of the response (default 5 s).
    pub request_timeout: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            queue_capacity: 1024,
            attempts: 4,
            backoff: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl Stats {
    fn drop_events(&self, n: u64, url: &str, why: &'static str) {
        if n == 0 {
            return;
        }
        let before = self.dropped.fetch_add(n, Ordering::Relaxed);
        let after = before + n;
        if before == 0 || before / DROP_WARN_EVERY != after / DROP_WARN_EVERY {
            tracing::warn!(url, dropped_total = after, "webhook event dropped: {why}");
        }
    }
}

/// Delivers webhook events in the background; see the [module docs](self).
///
/// Counters are per URL delivery: with two URLs one event counts twice.
#[derive(Debug)]
pub struct WebhookSender {
    queues: Vec<(String, Sender<lk::WebhookEvent>)>,
    /// Never sent on; dropping it wakes workers sleeping in a backoff at shutdown.
    stop: Sender<()>,
    /// Set at shutdown: workers attempt nothing after it.
    deadline: Arc<OnceLock<Instant>>,
    /// Each worker holds a clone of the sending side; disconnected once all have exited.
    done: Receiver<()>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<Stats>,
}

impl WebhookSender {
    /// Starts one delivery thread per URL, signing with `api_key`/`secret`.
    ///
    /// `None` when `urls` is empty, or when none of them is a valid `http(s)://` URL (each
    /// invalid one is logged as an error and skipped).
    pub fn start(urls: Vec<String>, api_key: String, secret: String) -> Option<WebhookSender> {
        Self::start_with(urls, api_key, secret, SenderConfig::default())
    }

    /// [`start`](Self::start) with explicit tuning.
    pub fn start_with(
        urls: Vec<String>,
        api_key: String,
        secret: String,
        config: SenderConfig,
    ) -> Option<WebhookSender> {
        let (stop, stop_rx) = bounded::<()>(0);
        let (done_tx, done) = bounded::<()>(0);
        let deadline = Arc::new(OnceLock::new());
        let stats = Arc::new(Stats::default());
        let agent = agent(config.request_timeout);
        let mut queues = Vec::with_capacity(urls.len());
        let mut threads = Vec::with_capacity(urls.len());
        for (i, url) in urls.into_iter().enumerate() {
            if let Err(why) = check_url(&url) {
                tracing::error!(url, "webhook URL skipped: {why}");
                continue;
            }
            let (tx, rx) = bounded(config.queue_capacity.max(1));
            let worker = Worker {
                url: url.clone(),
                rx,
                stop: stop_rx.clone(),
                deadline: Arc::clone(&deadline),
                agent: agent.clone(),
                api_key: api_key.clone(),
                secret: secret.clone(),
                config: config.clone(),
                stats: Arc::clone(&stats),
                _done: done_tx.clone(),
            };
            match std::thread::Builder::new()
                .name(format!("webhook-{i}"))
                .spawn(move || worker.run())
            {
                Ok(handle) => {
                    queues.push((url, tx));
                    threads.push(handle);
                }
                Err(e) => tracing::error!(url, "webhook thread not started: {e}"),
            }
        }
        if queues.is_empty() {
            return None;
        }
        tracing::info!(urls = queues.len(), "webhooks enabled");
        Some(WebhookSender {
            queues,
            stop,
            deadline,
            done,
            threads,
            stats,
        })
    }

    /// Queues `event` for every URL. Never blocks: where a queue is full the event is
    /// dropped for that URL and counted in [`dropped`](Self::dropped).
    pub fn send(&self, event: lk::WebhookEvent) {
        let Some(((last_url, last), rest)) = self.queues.split_last() else {
            return;
        };
        for (url, queue) in rest {
            self.enqueue(url, queue, event.clone());
        }
        self.enqueue(last_url, last, event);
    }

    fn enqueue(&self, url: &str, queue: &Sender<lk::WebhookEvent>, event: lk::WebhookEvent) {
        match queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.stats.drop_events(1, url, "queue full"),
            Err(TrySendError::Disconnected(_)) => {
                self.stats.drop_events(1, url, "delivery thread gone")
            }
        }
    }

    /// Events not delivered because a queue was full, or still queued at shutdown.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Events an endpoint answered with 2xx.
    pub fn delivered(&self) -> u64 {
        self.stats.delivered.load(Ordering::Relaxed)
    }

    /// Events given up on after their attempts (or a final non-2xx answer).
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// Delivers what is queued for at most `timeout`, then stops the threads. Returns by
    /// then even if a request is still in flight: that thread exits on its own once the
    /// request times out, attempting nothing more. Undelivered events count as dropped.
    pub fn shutdown(self, timeout: Duration) {
        let WebhookSender {
            queues,
            stop,
            deadline,
            done,
            threads,
            stats,
        } = self;
        let until = mono() + timeout;
        let _ = deadline.set(until);
        drop(queues);
        drop(stop);
        match done.recv_deadline(until) {
            Err(RecvTimeoutError::Disconnected) => {
                for t in threads {
                    let _ = t.join();
                }
            }
            // `done` is never sent on, so `Ok` cannot happen; a timeout leaves the threads
            // detached.
            Ok(()) | Err(RecvTimeoutError::Timeout) => tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "webhook delivery still in flight at shutdown, abandoned"
            ),
        }
        tracing::info!(
            delivered = stats.delivered.load(Ordering::Relaxed),
            failed = stats.failed.load(Ordering::Relaxed),
            dropped = stats.dropped.load(Ordering::Relaxed),
            "webhooks stopped"
        );
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        Some("http") | Some("https") => Err("no host".into()),
        _ => Err("scheme must be http or https".into()),
    }
}

fn agent(request_timeout: Duration) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::WebPki)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .user_agent(USER_AGENT)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(request_timeout))
        .build()
        .into()
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    Retry(String),
    Final(String),
}

struct Worker {
    url: String,
    rx: Receiver<lk::WebhookEvent>,
    stop: Receiver<()>,
    deadline: Arc<OnceLock<Instant>>,
    agent: ureq::Agent,
    api_key: String,
    secret: String,
    config: SenderConfig,
    stats: Arc<Stats>,
    _done: Sender<()>,
}

impl Worker {
    fn run(self) {
        while let Ok(event) = self.rx.recv() {
            if self.past_deadline() {
                let left = 1 + self.rx.try_iter().count() as u64;
                self.stats
                    .drop_events(left, &self.url, "still queued at shutdown");
                break;
            }
            self.deliver(&event);
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|d| mono() >= *d)
    }

    fn deliver(&self, event: &lk::WebhookEvent) {
        let (body, authorization) = match encode(event, &self.api_key, &self.secret, unix_now()) {
            Ok(encoded) => encoded,
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(url = self.url, event = event.event, id = event.id, "{e}");
                return;
            }
        };
        let mut error = String::from("shutdown deadline reached");
        let mut backoff = self.config.backoff;
        for attempt in 0..self.config.attempts.max(1) {
            if attempt > 0 {
                if !self.pause(backoff) {
                    break;
                }
                backoff = backoff.saturating_mul(2);
            }
            let timeout = match self.deadline.get() {
                Some(d) => match d.checked_duration_since(mono()) {
                    Some(left) if !left.is_zero() => left.min(self.config.request_timeout),
                    _ => break,
                },
                None => self.config.request_timeout,
            };
            match self.post(&body, &authorization, timeout) {
                Attempt::Delivered => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        url = self.url,
                        event = event.event,
                        id = event.id,
                        "webhook delivered"
                    );
                    return;
                }
                Attempt::Retry(e) => error = e,
                Attempt::Final(e) => {
                    error = e;
                    break;
                }
            }
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            url = self.url,
            event = event.event,
            id = event.id,
            "webhook not delivered: {error}"
        );
    }

    fn post(&self, body: &[u8], authorization: &str, timeout: Duration) -> Attempt {
        let request = self
            .agent
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Authorization", authorization)
            .config()
            .timeout_global(Some(timeout))
            .build();
        match request.send(body) {
            Ok(response) => {
                let status = response.status();
                // Read a small body so that the connection can be reused; errors don't matter.
                let mut body = response.into_body();
                let _ = body.with_config().limit(64 * 1024).read_to_vec();
                if status.is_success() {
                    Attempt::Delivered
                } else if status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS
                {
                    Attempt::Retry(format!("HTTP {status}"))
                } else {
                    Attempt::Final(format!("HTTP {status}"))
                }
            }
            Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => {
                Attempt::Final(e.to_string())
            }
            Err(e) => Attempt::Retry(e.to_string()),
        }
    }

    /// Waits `d` before a retry; `false` when shutdown's deadline would pass first.
    fn pause(&self, d: Duration) -> bool {
        let until = mono() + d;
        if self.deadline.get().is_some_and(|dl| *dl <= until) {
            return false;
        }
        if let Err(RecvTimeoutError::Disconnected) = self.stop.recv_deadline(until) {
            // Shutdown began during the wait.
            if self.deadline.get().is_some_and(|dl| *dl <= until) {
                return false;
            }
            std::thread::sleep(until.saturating_duration_since(mono()));
        }
        true
    }
}

/// This is a driver: it reads the clock, through `crate::clock` as everything else does.
fn mono() -> Instant {
    crate::clock::now().mono
}

fn unix_now() -> u64 {
    crate::clock::unix_secs()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    use base64::{engine::general_purpose::STANDARD, Engine};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::auth::KeyStore;

    /// One request as the sink saw it.
    struct Seen {
        method: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    fn read_request(stream: &mut TcpStream) -> Option<Seen> {
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head) = req.parse(&buf).ok()? {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let method = req.method?.to_owned();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head + len {
                    let n = stream.read(&mut chunk).ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                return Some(Seen {
                    method,
                    headers,
                    body: buf[head..head + len].to_vec(),
                });
            }
        }
    }

    /// An HTTP sink on 127.0.0.1 answering the given statuses in turn (then 200), one
    /// request per connection, for at most `max` requests.
    fn sink(statuses: Vec<u16>, max: usize) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for _ in 0..max {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let Some(seen) = read_request(&mut stream) else {
                    continue;
                };
                let status = statuses.next().unwrap_or(200);
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        (url, rx)
    }

    fn event(n: usize) -> lk::WebhookEvent {
        let room = lk::Room {
            sid: "RM_abc".into(),
            name: format!("room{n}"),
            ..Default::default()
        };
        super::super::room_started(&room, 1_700_000_000 + n as i64)
    }

    fn fast() -> SenderConfig {
        SenderConfig {
            backoff: Duration::from_millis(10),
            request_timeout: Duration::from_secs(2),
            ..SenderConfig::default()
        }
    }

    fn start(urls: Vec<String>, config: SenderConfig) -> WebhookSender {
        WebhookSender::start_with(urls, "APIkey".into(), "secret".into(), config).expect("sender")
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let until = mono() + Duration::from_secs(10);
        while !f() {
            assert!(mono() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn no_urls_no_sender() {
        assert!(WebhookSender::start(vec![], "k".into(), "s".into()).is_none());
        let bad = vec![
            "ftp://x/".to_owned(),
            "not a url".to_owned(),
            "http://".to_owned(),
        ];
        assert!(WebhookSender::start(bad, "k".into(), "s".into()).is_none());
    }

    #[test]
    fn delivers_in_order_signed_as_livekit() {
        const N: usize = 20;
        let (url, seen) = sink(vec![], N);
        let sender = start(vec![url], fast());
        let events: Vec<_> = (0..N).map(event).collect();
        for e in &events {
            sender.send(e.clone());
        }
        wait_until("deliveries", || sender.delivered() == N as u64);
        let keys = KeyStore::new([("APIkey".to_owned(), "secret".to_owned())]);
        for want in &events {
            let got = seen.recv_timeout(Duration::from_secs(5)).expect("request");
            assert_eq!(got.method, "POST");
            assert_eq!(got.header("content-type"), Some(CONTENT_TYPE));
            assert_eq!(got.header("user-agent"), Some(USER_AGENT));
            let auth = got.header("authorization").expect("authorization");
            assert!(!auth.starts_with("Bearer "), "raw JWT");
            let claims = keys.verify(auth, unix_now()).expect("verifies");
            assert_eq!(claims.iss, "APIkey");
            assert_eq!(claims.sha256, STANDARD.encode(Sha256::digest(&got.body)));
            let ev: lk::WebhookEvent = serde_json::from_slice(&got.body).expect("body");
            assert_eq!(&ev, want, "in order, unchanged");
        }
        sender.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn every_url_gets_every_event() {
        let (a, seen_a) = sink(vec![], 3);
        let (b, seen_b) = sink(vec![], 3);
        let sender = start(vec![a, b], fast());
        for n in 0..3 {
            sender.send(event(n));
        }
        wait_until("deliveries", || sender.delivered() == 6);
        assert_eq!(seen_a.try_iter().count(), 3);
        assert_eq!(seen_b.try_iter().count(), 3);
        sender.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn retries_server_errors_not_client_errors() {
        let (url, seen) = sink(vec![503, 500, 400], 10);
        let sender = start(vec![url], fast());
        sender.send(event(1)); // 503, 500, then 200
        sender.send(event(2)); // 400: final
        sender.send(event(3)); // 200
        wait_until("outcomes", || sender.delivered() + sender.failed() == 3);
        assert_eq!((sender.delivered(), sender.failed()), (2, 1));
        let rooms: Vec<String> = seen
            .try_iter()
            .map(|s| {
                let ev: lk::WebhookEvent = serde_json::from_slice(&s.body).expect("body");
                ev.room.expect("room").name
            })
            .collect();
        assert_eq!(rooms, ["room1", "room1", "room1", "room2", "room3"]);
        sender.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn refused_port_retries_then_gives_up() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let config = SenderConfig {
            backoff: Duration::from_millis(40),
            ..fast()
        };
        let sender = start(vec![format!("http://127.0.0.1:{port}/")], config);
        let t = mono();
        sender.send(event(1));
        wait_until("failure", || sender.failed() == 1);
        // Four attempts, with 40 + 80 + 160 ms of backoff between them.
        assert!(mono() - t >= Duration::from_millis(280), "retried");
        sender.send(event(2));
        wait_until("failures", || sender.failed() == 2);
        assert_eq!((sender.delivered(), sender.dropped()), (0, 0));
        let t = mono();
        sender.shutdown(Duration::from_secs(5));
        assert!(mono() - t < Duration::from_secs(1));
    }

    #[test]
    fn https_is_attempted_and_a_failed_handshake_is_a_failure() {
        // Accepts TCP and hangs up at once: the TLS handshake fails. This exercises the
        // rustls/aws-lc-rs client setup (a missing crypto provider would panic the worker).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}/", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for _ in 0..2 {
                if let Ok((stream, _)) = listener.accept() {
                    drop(stream);
                }
            }
        });
        let config = SenderConfig {
            attempts: 2,
            ..fast()
        };
        let sender = start(vec![url], config);
        sender.send(event(1));
        wait_until("failure", || sender.failed() == 1);
        assert_eq!((sender.delivered(), sender.dropped()), (0, 0));
        sender.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn hanging_endpoint_never_blocks_send_and_shutdown_is_bounded() {
        // Accepts connections (the kernel does) but never answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let sender = start(vec![url], SenderConfig::default());
        let t = mono();
        for n in 0..50 {
            sender.send(event(n));
        }
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "send never blocks"
        );
        let t = mono();
        sender.shutdown(Duration::from_millis(300));
        let took = t.elapsed();
        assert!(took < Duration::from_millis(800), "shutdown took {took:?}");
        drop(listener);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let config = SenderConfig {
            queue_capacity: 2,
            ..SenderConfig::default()
        };
        let sender = start(vec![url], config);
        for n in 0..10 {
            sender.send(event(n));
        }
        // The worker holds at most one event; the queue two; the rest were dropped.
        let dropped = sender.dropped();
        assert!((7..=8).contains(&dropped), "dropped {dropped}");
        assert_eq!(sender.delivered(), 0);
        sender.shutdown(Duration::from_millis(100));
        drop(listener);
    }

    #[test]
    fn shutdown_flushes_the_queue() {
        let (url, seen) = sink(vec![], 5);
        let sender = start(vec![url], fast());
        for n in 0..5 {
            sender.send(event(n));
        }
        let stats = Arc::clone(&sender.stats);
        sender.shutdown(Duration::from_secs(5));
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 5);
        assert_eq!(seen.try_iter().count(), 5);
    }
}

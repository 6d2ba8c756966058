//! The HTTP listener: accepts connections on the control executor and runs a bounded
//! HTTP/1.1 keep-alive loop per connection.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use crate::net::stream::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use super::cluster_routing::signal_home;
use super::handler::{handle, join_check, v1_join_request};
use super::router::{route, Route};
use crate::cluster::relay::{mark_relayed, splice};
use crate::control::Control;
use crate::control::Home;
use crate::http::{parse_request, Limits, Parsed, Response};

/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After refusing a request mid-body, read and discard at most this much so the client
/// sees our answer instead of a reset.
const MAX_DISCARD: usize = 8 * 1024 * 1024;

/// What a listener serves: the API port, or the Prometheus port (only `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Metrics,
}

pub async fn serve(listener: TcpListener, ctx: Rc<Control>, surface: Surface) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                tokio::task::spawn_local(connection(stream, ctx.clone(), surface));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on the error.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut stream: TcpStream, ctx: Rc<Control>, surface: Surface) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match parse_request(&buf, &limits) {
            Ok(Parsed::Complete { request, consumed }) => {
                ctx.quiet.touch(crate::clock::mono());
                // Kept only for an upgrade, which may be relayed to another node as is.
                let head = match request.is_websocket_upgrade() {
                    true => buf[..consumed].to_vec(),
                    false => Vec::new(),
                };
                buf.drain(..consumed);
                let started = crate::clock::mono();
                if surface == Surface::Metrics {
                    let response = metrics(&request, &ctx);
                    if write(&mut stream, &response, request.keep_alive)
                        .await
                        .is_err()
                        || !request.keep_alive
                    {
                        return;
                    }
                    continue;
                }
                let signal = match route(&request.method, &request.path) {
                    Route::Rtc => Some(false),
                    Route::RtcV1 => Some(true),
                    _ => None,
                };
                if let Some(v1) = signal.filter(|_| request.is_websocket_upgrade()) {
                    match signal_home(&request, &ctx).await {
                        Ok(Home::Here) => {}
                        Ok(Home::Elsewhere(node)) => {
                            let token = ctx.cluster.as_ref().map(|c| c.relay_token());
                            if let Some(head) = mark_relayed(&head, token.unwrap_or_default()) {
                                debug!(node = %node.id, "signal connection relayed to the room's node");
                                let traffic = || ctx.quiet.touch(crate::clock::mono());
                                splice(stream, head, buf, &node.api, &traffic).await;
                            }
                            return;
                        }
                        Err(response) => {
                            log_request(&request, response.status, started);
                            let _ = write(&mut stream, &response, false).await;
                            return;
                        }
                    }
                    let checked = join_check(&request, &ctx).and_then(|claims| {
                        let join_request = v1.then(|| v1_join_request(&request)).transpose()?;
                        Ok((claims, join_request))
                    });
                    match checked {
                        Ok((claims, join_request)) => {
                            // The WebSocket reads with its own buffer, for as long as the
                            // participant stays: these 20 KiB would stay with it.
                            drop((std::mem::take(&mut buf), std::mem::take(&mut chunk)));
                            crate::signal::ws::serve(stream, &request, claims, join_request, ctx)
                                .await
                        }
                        Err(response) => {
                            log_request(&request, response.status, started);
                            let _ = write(&mut stream, &response, false).await;
                        }
                    }
                    return;
                }
                let response = handle(&request, &ctx).await;
                log_request(&request, response.status, started);
                let keep_alive = request.keep_alive;
                if write(&mut stream, &response, keep_alive).await.is_err() || !keep_alive {
                    return;
                }
            }
            Ok(Parsed::Partial { .. }) => match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            Err(e) => {
                debug!(error = %e, "bad request");
                let response = Response::text(e.status(), e.to_string());
                if write(&mut stream, &response, false).await.is_ok() {
                    linger(&mut stream, &mut chunk).await;
                }
                return;
            }
        }
    }
}

/// One line per answered request, without the query string (it may carry a token).
fn log_request(request: &crate::http::Request, status: u16, started: std::time::Instant) {
    debug!(
        method = %request.method,
        path = %request.path,
        status,
        ms = crate::clock::mono().saturating_duration_since(started).as_millis() as u64,
        "http request"
    );
}

fn metrics(request: &crate::http::Request, ctx: &Control) -> Response {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/metrics") => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            ctx.metrics_text(),
        ),
        _ => Response::text(404, "404 page not found"),
    }
}

async fn write(
    stream: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
) -> std::io::Result<()> {
    stream.write_all(&response.encode(keep_alive)).await?;
    stream.flush().await
}

/// Half-closes and drains what the client is still sending, bounded in bytes and time.
async fn linger(stream: &mut TcpStream, chunk: &mut [u8]) {
    let _ = stream.shutdown(Shutdown::Write).await;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut discarded = 0;
    while discarded < MAX_DISCARD {
        match stream.read(chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => discarded += n,
        }
    }
}

//! Answers one parsed HTTP request on the control thread.

use tracing::debug;

use super::room_service;
use super::router::{route, Route};
use super::twirp::{Encoding, TwirpError};
use super::validate::{validate_join, JoinCheck, JoinContext};
use crate::auth::{token_from_request, AuthError, Claims};
use crate::clock;
use crate::control::{CallError, Control};
use crate::http::{Request, Response};

pub async fn handle(req: &Request, ctx: &Control) -> Response {
    match route(&req.method, &req.path) {
        Route::Preflight => preflight(req),
        Route::Health => {
            let now = clock::now();
            match ctx.not_ready(now.mono) {
                None => Response::text(200, "OK"),
                Some(why) if ctx.lifecycle.is_draining() => {
                    debug!(%why, "health check: draining");
                    Response::text(503, "Draining")
                }
                Some(why) => {
                    debug!(%why, "health check: not ready");
                    Response::text(406, "Not Ready")
                }
            }
        }
        Route::RtcValidate | Route::RtcV1Validate => {
            match super::cluster_routing::validate_elsewhere(req, ctx).await {
                Some(answer) => answer,
                None => validate_here(req, ctx),
            }
        }
        // Upgrades are taken over by `api::server` before they reach here; anything
        // else on these paths is 404, as LiveKit answers it.
        Route::Rtc | Route::RtcV1 => Response::text(404, "404 page not found"),
        Route::Twirp { service, method } => twirp(req, ctx, service, method).await,
        Route::TwirpBadMethod => TwirpError::bad_route(format!(
            "unsupported method {:?} (only POST is allowed)",
            req.method
        ))
        .to_response(),
        Route::NotFound => Response::text(404, "404 page not found"),
    }
}

/// `/rtc/validate` and `/rtc/v1/validate` against this node.
fn validate_here(req: &Request, ctx: &Control) -> Response {
    let v1 = matches!(route(&req.method, &req.path), Route::RtcV1Validate);
    let checked = join_check(req, ctx).and_then(|_| match v1 {
        true => v1_join_request(req).map(|_| ()),
        false => Ok(()),
    });
    match checked {
        Ok(()) => Response::text(200, "success"),
        Err(resp) => resp,
    }
}

fn preflight(req: &Request) -> Response {
    let headers = req
        .header("access-control-request-headers")
        .unwrap_or("Authorization, Content-Type")
        .to_string();
    Response::new(204, "text/plain", Vec::new())
        .with_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .with_header("Access-Control-Allow-Headers", headers)
        .with_header("Access-Control-Max-Age", "86400")
}

/// Verifies the request's token, if it has one. A token that is present but bad is
/// refused here with 401 and a plain-text reason, before any handler sees it.
pub(super) fn claims(req: &Request, ctx: &Control) -> Result<Option<Claims>, Response> {
    let token = token_from_request(req.header("authorization"), req.query_param("access_token"))
        .map_err(|e| unauthorized(&e))?;
    match token {
        None => Ok(None),
        Some(token) => ctx
            .keys
            .verify(token, clock::unix_secs())
            .map(Some)
            .map_err(|e| unauthorized(&e)),
    }
}

fn unauthorized(e: &AuthError) -> Response {
    debug!(error = %e, "request refused");
    Response::text(401, e.to_string())
}

/// The checks `/rtc` and `/rtc/validate` make before a join.
pub fn join_check(req: &Request, ctx: &Control) -> Result<Claims, Response> {
    let claims = claims(req, ctx)?;
    let room = claims.as_ref().map(|c| c.video.room.as_str()).unwrap_or("");
    let join = JoinContext {
        limits: &ctx.config.limit,
        room_exists: ctx.room_exists(room),
        auto_create: ctx.config.room.auto_create,
        node_full: ctx.limits_reached(),
    };
    match validate_join(claims.as_ref(), &join) {
        JoinCheck::Ok => Ok(claims.unwrap_or_default()),
        JoinCheck::Refused { status, message } => Err(Response::text(status, message)),
    }
}

/// `/rtc/v1`'s `join_request`, or the 400 LiveKit answers a bad one with.
pub fn v1_join_request(req: &Request) -> Result<livekit_protocol::JoinRequest, Response> {
    crate::signal::join_request::decode(req.query_param("join_request")).map_err(|e| {
        debug!(error = %e, "v1 join refused");
        Response::text(400, e.to_string())
    })
}

async fn twirp(req: &Request, ctx: &Control, service: &str, method: &str) -> Response {
    let claims = match claims(req, ctx) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let encoding = match Encoding::from_content_type(req.header("content-type")) {
        Ok(e) => e,
        Err(e) => return e.to_response(),
    };
    let planned = match room_service::plan(service, method, claims.as_ref(), encoding, &req.body) {
        Ok(p) => p,
        Err(e) => return e.to_response(),
    };
    if let Some(response) = super::cluster_routing::relay_twirp(req, ctx, &planned, encoding).await
    {
        ctx.count_twirp(method, response.status);
        return response;
    }
    let response = match ctx.room_op(planned.op).await {
        Ok(reply) => room_service::respond(planned.shape, encoding, Ok(reply)),
        Err(CallError::Room(e)) => room_service::respond(planned.shape, encoding, Err(e)),
        Err(e @ CallError::ShardGone(_)) => TwirpError::unavailable(e.to_string()).to_response(),
    };
    ctx.count_twirp(method, response.status);
    response
}

//! Many nodes: which node answers a signal connection or a Twirp call. A room hosted
//! here (or a request another node relayed) is served here; one hosted elsewhere is
//! relayed to its node (`cluster::relay`); ListRooms asks every live node.

use livekit_protocol as lk;
use tracing::{debug, warn};

use super::handler::claims;
use super::room_service::{self, Planned, Shape};
use super::twirp::{decode, Encoding, TwirpError};
use crate::cluster::relay::{forward, RELAYED_HEADER};
use crate::control::{Control, Home};
use crate::http::{Request, Response};
use crate::room::{RoomOp, RoomReply};

/// Where a signal connection's room lives. A bad token is refused here as the join
/// check would refuse it; a room that cannot be placed (Redis away) gets 503.
pub async fn signal_home(req: &Request, ctx: &Control) -> Result<Home, Response> {
    if ctx.cluster.is_none() {
        return Ok(Home::Here);
    }
    let room = match claims(req, ctx)? {
        Some(c) => c.video.room,
        None => return Ok(Home::Here),
    };
    let place = ctx.config.room.auto_create;
    ctx.room_home(&room, place, req.header(RELAYED_HEADER))
        .await
        .map_err(|e| {
            debug!(%room, error = %e, "join refused: the room's node is unknown");
            Response::text(503, format!("cannot place room {room:?}: {e}"))
        })
}

/// `/rtc/validate` for a room hosted elsewhere: that node's answer (so a room that
/// exists only there is not "not found" here). `None`: validate here.
pub async fn validate_elsewhere(req: &Request, ctx: &Control) -> Option<Response> {
    let cluster = ctx.cluster.as_ref()?;
    let room = claims(req, ctx).ok()??.video.room;
    let node = match ctx
        .room_home(&room, false, req.header(RELAYED_HEADER))
        .await
    {
        Ok(Home::Elsewhere(node)) => node,
        _ => return None,
    };
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let query: Vec<String> = (req.query.iter())
        .map(|(k, v)| {
            let (k, v) = (
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC),
            );
            format!("{k}={v}")
        })
        .collect();
    let target = format!("{}?{}", req.path, query.join("&"));
    relay(req, &target, &node.api, cluster.relay_token())
        .await
        .ok()
}

/// Answers a RoomService call that needs another node: the call relayed to the room's
/// node, or ListRooms merged over every live node. `None`: serve it here alone.
pub async fn relay_twirp(
    req: &Request,
    ctx: &Control,
    planned: &Planned,
    encoding: Encoding,
) -> Option<Response> {
    let cluster = ctx.cluster.as_ref()?;
    if cluster.relayed(req.header(RELAYED_HEADER)) {
        return None;
    }
    if planned.shape == Shape::ListRooms {
        return Some(list_everywhere(req, ctx, planned, encoding).await);
    }
    let room = planned.op.room()?;
    let place = matches!(planned.op, RoomOp::Create(_));
    let node = match ctx.room_home(room, place, None).await {
        Ok(Home::Here) => return None,
        Ok(Home::Elsewhere(node)) => node,
        Err(e) => return Some(TwirpError::unavailable(e.to_string()).to_response()),
    };
    Some(
        match relay(req, &req.path, &node.api, cluster.relay_token()).await {
            Ok(answer) => answer,
            Err(e) => {
                warn!(node = %node.id, error = %e, "cannot relay a RoomService call");
                TwirpError::unavailable(format!("the room's node did not answer: {e}"))
                    .to_response()
            }
        },
    )
}

/// `req` (method, `target`, body, its token and content type) sent to the node at `api`.
async fn relay(req: &Request, target: &str, api: &str, token: &str) -> std::io::Result<Response> {
    let mut headers = vec![(RELAYED_HEADER, token)];
    for name in ["authorization", "content-type"] {
        if let Some(v) = req.header(name) {
            headers.push((name, v));
        }
    }
    forward(api, &req.method, target, &headers, &req.body).await
}

/// This node's rooms and every other live node's. A node that does not answer is left
/// out (logged); without Redis the listing is this node's alone.
async fn list_everywhere(
    req: &Request,
    ctx: &Control,
    planned: &Planned,
    encoding: Encoding,
) -> Response {
    let local = ctx.room_op(planned.op.clone()).await;
    let Ok(RoomReply::Rooms(mut rooms)) = local else {
        return match local {
            Ok(r) => room_service::respond(planned.shape, encoding, Ok(r)),
            Err(e) => TwirpError::unavailable(e.to_string()).to_response(),
        };
    };
    let Some(cluster) = &ctx.cluster else {
        return room_service::respond(planned.shape, encoding, Ok(RoomReply::Rooms(rooms)));
    };
    let nodes = cluster.nodes().await.unwrap_or_else(|e| {
        warn!(error = %e, "ListRooms: listing this node's rooms only");
        Vec::new()
    });
    for node in nodes.iter().filter(|n| !cluster.is_me(n)) {
        let answer = relay(req, &req.path, &node.api, cluster.relay_token()).await;
        let listed = answer
            .ok()
            .filter(|a| a.status == 200)
            .and_then(|a| decode::<lk::ListRoomsResponse>(encoding, &a.body).ok());
        match listed {
            Some(list) => rooms.extend(list.rooms),
            None => warn!(node = %node.id, "ListRooms: a node did not answer"),
        }
    }
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
    rooms.dedup_by(|a, b| a.name == b.name);
    room_service::respond(planned.shape, encoding, Ok(RoomReply::Rooms(rooms)))
}

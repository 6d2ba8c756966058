//! A `reconnect=1` signal connection (v1: `JoinRequest.reconnect`): the client resumes
//! its participant after its previous connection dropped (see `room::resume` and
//! `control::resume`). When there is nothing to resume, the answer is LiveKit's leave
//! STATE_MISMATCH/RECONNECT, and the SDK does a full reconnect.

use std::rc::Rc;

use crate::net::stream::TcpStream;
use tracing::info;

use super::ws::{refuse_resume, session, upgrade, write_response};
use crate::auth::Claims;
use crate::control::Control;
use crate::http::Response;
use crate::room::{RoomOp, RoomReply};

/// `sid` is the participant sid the client named: a resume naming another
/// participant's (another room's, an earlier session's) is refused with 400.
pub async fn serve(
    mut stream: TcpStream,
    claims: &Claims,
    sid: Option<&str>,
    accept: &str,
    ctx: Rc<Control>,
) {
    // The token names the room and the identity; as LiveKit, the participant is found
    // by identity.
    let (room, identity) = (claims.video.room.clone(), claims.identity().to_string());
    if let (Some(asked), Some(here)) = (sid, ctx.participant_sid(&room, &identity)) {
        if asked != here {
            info!(%room, %identity, asked, "resume refused: the sid is not this participant's");
            let refused = Response::text(
                400,
                format!("participant {asked} is not {identity} in room {room}"),
            );
            let _ = write_response(&mut stream, &refused).await;
            return;
        }
    }
    let Some(resumed) = ctx.take_over(&room, &identity).await else {
        info!(%room, %identity, "resume refused: no such participant here");
        refuse_resume(stream, accept).await;
        return;
    };
    let op = RoomOp::Resume {
        room: room.clone(),
        identity: identity.clone(),
    };
    let first = match ctx.room_op(op).await {
        Ok(RoomReply::Resumed { conn, messages }) if conn == resumed.conn => messages,
        other => {
            info!(%room, %identity, reply = ?other, "resume refused by the room");
            ctx.drop_conn(resumed.conn);
            refuse_resume(stream, accept).await;
            return;
        }
    };
    let conn = resumed.conn;
    info!(conn, %room, %identity, generation = resumed.generation, "participant resumed");
    match upgrade(stream, accept).await {
        Some(mut ws) => {
            session(
                &mut ws,
                conn,
                resumed.generation,
                resumed.events,
                &first,
                &ctx,
            )
            .await
        }
        None => {
            ctx.signal_lost(conn, resumed.generation, resumed.events)
                .await
        }
    }
    info!(conn, %room, %identity, "signal connection closed");
}

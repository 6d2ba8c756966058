//! The shard's driver: the only place where a shard touches channels and the clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use tracing::{debug, info};

use super::messages::{FromShard, ShardStats, ToShard};
use crate::clock;
use crate::rtc::Rooms;

/// How often room lifetimes are checked and stats are reported.
const TICK: Duration = Duration::from_secs(1);

/// Runs one shard until the control thread says stop or goes away.
pub async fn run(
    shard: usize,
    inbox: ConnectedReceiver<ToShard>,
    outbox: ConnectedSender<FromShard>,
    rooms: Rooms,
) {
    info!(shard, "shard started");
    let rooms = Rc::new(RefCell::new(rooms));
    let outbox = Rc::new(outbox);
    glommio::spawn_local(tick_loop(shard, rooms.clone(), outbox.clone())).detach();

    let mut out = Vec::new();
    while let Some(msg) = inbox.recv().await {
        let now = clock::now();
        let reply = match msg {
            ToShard::Room { req_id, op } => {
                let result = rooms
                    .borrow_mut()
                    .apply(op, now.mono, now.unix_secs, &mut out);
                Some(FromShard::Reply {
                    req_id,
                    result: Box::new(result),
                })
            }
            ToShard::Signal { conn, request } => {
                rooms
                    .borrow_mut()
                    .signal(conn, *request, now.mono, now.unix_ms, &mut out);
                None
            }
            ToShard::Disconnect { conn } => {
                rooms.borrow_mut().disconnect(conn, now.mono, &mut out);
                None
            }
            ToShard::Shutdown => break,
        };
        // Signal messages first: a join's ParticipantUpdates reach the others before the
        // joiner's own answer lets it act.
        for o in out.drain(..) {
            if outbox.send(FromShard::Out(o)).await.is_err() {
                return;
            }
        }
        if let Some(reply) = reply {
            if outbox.send(reply).await.is_err() {
                break;
            }
        }
    }
    info!(shard, "shard stopped");
}

async fn tick_loop(
    shard: usize,
    rooms: Rc<RefCell<Rooms>>,
    outbox: Rc<ConnectedSender<FromShard>>,
) {
    loop {
        glommio::timer::sleep(TICK).await;
        let closed = rooms.borrow_mut().expire(clock::now().mono);
        for name in closed {
            debug!(shard, room = %name, "room closed after its timeout");
            if outbox
                .send(FromShard::RoomClosed { shard, name })
                .await
                .is_err()
            {
                return;
            }
        }
        let stats = {
            let rooms = rooms.borrow();
            ShardStats {
                shard,
                rooms: rooms.len(),
                participants: rooms.participant_count(),
                ..Default::default()
            }
        };
        if outbox.send(FromShard::Stats(stats)).await.is_err() {
            return;
        }
    }
}

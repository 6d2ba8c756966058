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

    while let Some(msg) = inbox.recv().await {
        match msg {
            ToShard::Room { req_id, op } => {
                let now = clock::now();
                let result = rooms.borrow_mut().apply(op, now.mono, now.unix_secs);
                if outbox
                    .send(FromShard::Reply {
                        req_id,
                        result: Box::new(result),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            ToShard::Shutdown => break,
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

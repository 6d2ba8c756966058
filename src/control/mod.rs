//! The control thread's state: shard inboxes, requests awaiting a shard's answer, the
//! room directory and node health. Everything here lives on one executor, so plain
//! `RefCell`s suffice; nothing is shared with shards except through channels.

mod cluster;
pub mod directory;
pub mod quiet;
mod resume;
mod routing;
mod spread;

pub use cluster::Home;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};
use tokio::sync::oneshot;
use tracing::warn;

use crate::auth::KeyStore;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use livekit_protocol as lk;

use crate::room::{ConnId, Outbound, RoomError, RoomOp, RoomReply};
use crate::shard::{FromShard, ShardStats, ToShard};
pub use directory::Directory;

/// A node whose shards have not reported for this long is not ready (as LiveKit's
/// health check treats stale node stats).
const STATS_STALE_AFTER: Duration = Duration::from_secs(4);

/// Why a room operation could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("shard {0} is not running")]
    ShardGone(usize),
}

type Pending = RefCell<HashMap<u64, oneshot::Sender<Result<RoomReply, RoomError>>>>;

/// What the control thread passes to a signal connection's task.
#[derive(Debug)]
pub enum ConnEvent {
    Signal(Box<lk::SignalResponse>),
    Close(lk::LeaveRequest),
    /// A resume of this participant arrived on another connection: end this one and
    /// hand over the queue (see `control::resume`).
    Takeover,
}

struct Conn {
    shard: Option<usize>,
    /// `None` once the queue overflowed: the connection task then ends, and with it
    /// the participant (a client that does not read cannot make the node buffer
    /// without bound).
    events: Option<Sender<ConnEvent>>,
    /// Whose participant this is (set by `bind_conn`), for resumes to find it.
    room: String,
    identity: String,
    /// The participant's sid, for a resume to check the one it names.
    sid: String,
    /// The queue's receiving end while no signal connection reads it: the connection
    /// dropped and the participant may resume (`control::resume`).
    parked: Option<Receiver<ConnEvent>>,
    /// Which connection task owns the participant; bumped when a resume takes over,
    /// so that the previous task's end changes nothing.
    generation: u64,
}

/// Signal messages queued for one connection before it counts as not reading.
const CONN_QUEUE: usize = 1024;

struct ShardStatus {
    stats: ShardStats,
    last_seen: Instant,
}

pub struct Control {
    pub config: Config,
    pub keys: KeyStore,
    pub lifecycle: Arc<Lifecycle>,
    pub node_id: String,
    /// Whether this thread may park on the quiet grid; touched by what must not wait.
    pub quiet: Arc<quiet::Quiet>,
    /// Taken at the end of a drain, to deliver what is still queued.
    pub webhooks: RefCell<Option<crate::webhook::WebhookSender>>,
    twirp_counts: RefCell<crate::metrics::TwirpCounts>,
    shards: Vec<Sender<ToShard>>,
    pending: Pending,
    next_req: Cell<u64>,
    directory: RefCell<Directory>,
    status: RefCell<Vec<ShardStatus>>,
    conns: RefCell<HashMap<ConnId, Conn>>,
    next_conn: Cell<ConnId>,
    /// The embedded TURN server's counters, when it runs.
    turn: RefCell<Option<Arc<crate::turn::TurnStats>>>,
    /// Many nodes (`redis.address`): where rooms this node does not host are.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Participants of a room on its home shard before joins go to other shards
    /// (`core-affinity.toml` `spread_after`; 0: never).
    spread_after: Cell<usize>,
    /// Room copies being opened on another shard (`spread::open_copy`).
    opening: RefCell<std::collections::HashSet<(String, usize)>>,
    /// One queue per shard for the news of spread rooms, each drained into that
    /// shard's inbox by its own task (`spread::start_news`), so that a pump never
    /// waits on another shard's full inbox while its own shard waits on it.
    news: Vec<mpsc::UnboundedSender<ToShard>>,
    news_queues: RefCell<Vec<Option<mpsc::UnboundedReceiver<ToShard>>>>,
}

/// What the control thread talks to outside this process, when configured.
#[derive(Default)]
pub struct Outside {
    pub webhooks: Option<crate::webhook::WebhookSender>,
    pub cluster: Option<crate::cluster::Cluster>,
}

impl Control {
    pub fn new(
        config: Config,
        keys: KeyStore,
        shards: Vec<Sender<ToShard>>,
        quiet: Arc<quiet::Quiet>,
        lifecycle: Arc<Lifecycle>,
        node_id: String,
        outside: Outside,
    ) -> Rc<Self> {
        let Outside { webhooks, cluster } = outside;
        let started = quiet.epoch();
        let status = (0..shards.len())
            .map(|shard| ShardStatus {
                stats: ShardStats {
                    shard,
                    ..Default::default()
                },
                last_seen: started,
            })
            .collect();
        let (news, news_queues): (Vec<_>, Vec<_>) = (0..shards.len())
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            })
            .unzip();
        Rc::new(Control {
            config,
            keys,
            lifecycle,
            node_id,
            quiet,
            webhooks: RefCell::new(webhooks),
            twirp_counts: RefCell::new(Default::default()),
            directory: RefCell::new(Directory::new(shards.len())),
            shards,
            pending: RefCell::new(HashMap::new()),
            next_req: Cell::new(1),
            status: RefCell::new(status),
            conns: RefCell::new(HashMap::new()),
            next_conn: Cell::new(1),
            turn: RefCell::new(None),
            cluster,
            spread_after: Cell::new(0),
            opening: RefCell::new(Default::default()),
            news,
            news_queues: RefCell::new(news_queues),
        })
    }

    /// Drains one shard's outbox until it closes. Spawn one per shard.
    pub async fn pump(self: Rc<Self>, mut from_shard: Receiver<FromShard>, now: fn() -> Instant) {
        while let Some(msg) = from_shard.recv().await {
            if !matches!(msg, FromShard::Stats(_)) {
                self.quiet.touch(now());
            }
            match msg {
                FromShard::Reply { req_id, result } => {
                    if let Some(tx) = self.pending.borrow_mut().remove(&req_id) {
                        let _ = tx.send(*result);
                    }
                }
                FromShard::RoomClosed { shard, name } => self.copy_closed(&name, shard).await,
                FromShard::Spread { shard, out } => self.route_spread(shard, *out),
                FromShard::Out(Outbound::Signal { conn, response }) => {
                    self.deliver(conn, ConnEvent::Signal(response));
                }
                FromShard::Out(Outbound::Close { conn, leave }) => {
                    self.deliver(conn, ConnEvent::Close(leave));
                }
                FromShard::Event(event) => self.on_room_event(*event),
                FromShard::Stats(stats) => {
                    if let Some(s) = self.status.borrow_mut().get_mut(stats.shard) {
                        s.stats = *stats;
                        s.last_seen = now();
                    }
                }
            }
        }
    }

    /// A new signal connection: its id and the stream of what the shards send it.
    /// Registered before the join so nothing sent to it right after is lost.
    pub fn open_conn(&self) -> (ConnId, Receiver<ConnEvent>) {
        let conn = self.next_conn.get();
        self.next_conn.set(conn + 1);
        let (events, rx) = mpsc::channel(CONN_QUEUE);
        self.conns.borrow_mut().insert(
            conn,
            Conn {
                shard: None,
                events: Some(events),
                room: String::new(),
                identity: String::new(),
                sid: String::new(),
                parked: None,
                generation: 0,
            },
        );
        self.lifecycle.conn_opened();
        (conn, rx)
    }

    /// Records which shard took the connection's participant (after its join).
    pub fn bind_conn(&self, conn: ConnId, room: &str, identity: &str, sid: &str) {
        let home = self.directory.borrow().lookup(room);
        if let Some(c) = self.conns.borrow_mut().get_mut(&conn) {
            // Set by the join's placement (`spread::place_conn`).
            c.shard = c.shard.or(home);
            c.room = room.to_string();
            c.identity = identity.to_string();
            c.sid = sid.to_string();
        }
    }

    /// Forwards a client's request to the shard that holds its participant. Signalling
    /// is never dropped: this waits when the shard's inbox is full.
    pub async fn signal(&self, conn: ConnId, request: lk::SignalRequest) {
        if let Some(shard) = self.conn_shard(conn) {
            let request = Box::new(request);
            let _ = self.send_to(shard, ToShard::Signal { conn, request }).await;
        }
    }

    /// The connection is gone: its participant leaves.
    pub async fn close_conn(&self, conn: ConnId) {
        let removed = self.conns.borrow_mut().remove(&conn);
        if removed.is_some() {
            self.lifecycle.conn_closed();
        }
        if let Some(shard) = removed.and_then(|c| c.shard) {
            let _ = self.send_to(shard, ToShard::Disconnect { conn }).await;
        }
    }

    fn deliver(&self, conn: ConnId, event: ConnEvent) {
        let mut conns = self.conns.borrow_mut();
        let Some(c) = conns.get_mut(&conn) else {
            return;
        };
        if c.parked.is_some() && matches!(event, ConnEvent::Close(_)) {
            // The participant left while its connection was away: nothing to resume.
            conns.remove(&conn);
            return;
        }
        let overflowed = c
            .events
            .as_ref()
            .is_some_and(|tx| matches!(tx.try_send(event), Err(TrySendError::Full(_))));
        if overflowed {
            warn!(
                conn,
                queued = CONN_QUEUE,
                "signal connection not reading; closing it"
            );
            c.events = None;
        }
    }

    /// Whether a room is known to this node.
    pub fn room_exists(&self, room: &str) -> bool {
        self.directory.borrow().lookup(room).is_some()
    }

    /// Waits for the main thread to start a drain, then asks every connected
    /// participant to leave for good (SERVER_SHUTDOWN, DISCONNECT: SDKs do not retry).
    pub async fn watch_drain(self: Rc<Self>) {
        self.lifecycle.drain_started().await;
        self.quiet.touch(crate::clock::mono());
        // Leave the cluster first: no new rooms or relayed joins come here.
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
        let leave = crate::room::participant::leave(
            lk::DisconnectReason::ServerShutdown,
            lk::leave_request::Action::Disconnect,
        );
        for tx in self
            .conns
            .borrow()
            .values()
            .filter_map(|c| c.events.as_ref())
        {
            let _ = tx.try_send(ConnEvent::Close(leave.clone()));
        }
        // The main thread exits once they are gone (or at its drain timeout). Before
        // that: a round trip to every shard, so that the leaves' events are queued here,
        // then a bounded delivery of the queued webhooks.
        while self.lifecycle.open_conns() > 0 {
            // A drain is no quiet spell: its polls must not stretch to the grid's.
            self.quiet.touch(crate::clock::mono());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.room_op(RoomOp::List { names: Vec::new() }).await;
        let webhooks = self.webhooks.borrow_mut().take();
        if let Some(sender) = webhooks {
            // Blocks this thread, which has nothing else left to do.
            sender.shutdown(crate::lifecycle::WEBHOOK_FLUSH);
        }
        self.lifecycle.finish();
    }

    /// Room events become webhooks (when configured).
    fn on_room_event(&self, event: crate::room::RoomEvent) {
        use crate::room::RoomEvent as E;
        use crate::webhook as wh;
        let webhooks = self.webhooks.borrow();
        let Some(sender) = webhooks.as_ref() else {
            return;
        };
        let now = crate::clock::unix_secs() as i64;
        let hook = match &event {
            E::RoomStarted(room) => wh::room_started(room, now),
            E::RoomFinished(room) => wh::room_finished(room, now),
            E::ParticipantJoined(room, p) => wh::participant_joined(room, p, now),
            E::ParticipantLeft(room, p) => wh::participant_left(room, p, now),
            E::TrackPublished(room, p, t) => wh::track_published(room, p, t, now),
            E::TrackUnpublished(room, p, t) => wh::track_unpublished(room, p, t, now),
        };
        sender.send(hook);
    }

    pub fn count_twirp(&self, method: &str, status: u16) {
        *self
            .twirp_counts
            .borrow_mut()
            .entry((method.to_string(), status))
            .or_default() += 1;
    }

    pub fn set_turn_stats(&self, stats: Option<Arc<crate::turn::TurnStats>>) {
        *self.turn.borrow_mut() = stats;
    }

    /// The Prometheus exposition of the latest shard reports.
    pub fn metrics_text(&self) -> String {
        let stats: Vec<ShardStats> = self
            .status
            .borrow()
            .iter()
            .map(|s| s.stats.clone())
            .collect();
        // The only bounded channels that drop are the webhook queues; the shards'
        // channels make the sender wait.
        let webhook = self.webhooks.borrow().as_ref().map_or(0, |w| w.dropped());
        let drops = [("webhook", webhook)];
        let mut text =
            crate::metrics::render(&self.node_id, &stats, &self.twirp_counts.borrow(), &drops);
        if let Some(turn) = self.turn.borrow().as_ref() {
            crate::metrics::render_turn(&mut text, &self.node_id, turn);
        }
        text
    }

    /// `None` when healthy, or the reason the node is not ready.
    pub fn not_ready(&self, now: Instant) -> Option<String> {
        if self.lifecycle.is_draining() {
            return Some("draining".into());
        }
        let status = self.status.borrow();
        if let Some(stale) = status
            .iter()
            .find(|s| now.saturating_duration_since(s.last_seen) > STATS_STALE_AFTER)
        {
            return Some(format!("shard {} stopped reporting", stale.stats.shard));
        }
        drop(status);
        self.limits_reached()
    }

    /// Why this node takes no more joins, from the shards' latest stats: LiveKit's
    /// `limit.num_tracks` (published plus subscribed) and `limit.bytes_per_sec` (in plus
    /// out).
    pub fn limits_reached(&self) -> Option<String> {
        let status = self.status.borrow();
        let limit = &self.config.limit;
        let tracks: usize = status
            .iter()
            .map(|s| s.stats.tracks + s.stats.subscribed)
            .sum();
        let bytes: u64 = status.iter().map(|s| s.stats.bytes_per_sec).sum();
        if limit.num_tracks > 0 && tracks as i64 >= i64::from(limit.num_tracks) {
            return Some(format!("track limit reached ({tracks})"));
        }
        if limit.bytes_per_sec > 0.0 && bytes as f64 >= f64::from(limit.bytes_per_sec) {
            return Some(format!("bandwidth limit reached ({bytes} B/s)"));
        }
        None
    }

    /// Sends to a shard's inbox, waiting when it is full (never dropped).
    async fn send_to(&self, shard: usize, msg: ToShard) -> Result<(), CallError> {
        let tx = self.shards.get(shard).ok_or(CallError::ShardGone(shard))?;
        tx.send(msg).await.map_err(|_| CallError::ShardGone(shard))
    }

    async fn call(&self, shard: usize, op: RoomOp) -> Result<RoomReply, CallError> {
        let req_id = self.next_req.get();
        self.next_req.set(req_id.wrapping_add(1));
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(req_id, tx);
        if let Err(e) = self.send_to(shard, ToShard::Room { req_id, op }).await {
            self.pending.borrow_mut().remove(&req_id);
            warn!(shard, "shard inbox closed");
            return Err(e);
        }
        match rx.await {
            Ok(result) => result.map_err(CallError::Room),
            Err(_) => Err(CallError::ShardGone(shard)),
        }
    }
}

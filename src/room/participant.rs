//! A participant as its room sees it: its public info, what its token allows, and the
//! signal connection that reaches it.

use std::collections::HashMap;
use std::time::Instant;

use livekit_protocol as lk;

use crate::session::{Mid, PeerSession};
use crate::sfu::bandwidth::LinkEstimator;
use crate::sfu::connection_quality::QualityInputs;
pub use crate::sfu::downtrack::DownTrack;

/// A subscriber's downtracks by track sid (see `keyed_slots`).
pub type DownTracks = super::keyed_slots::KeyedSlots<DownTrack>;

/// Identifies one signal connection, so the control thread can route answers to it.
pub type ConnId = u64;

/// Everything a join needs, taken from the token and the `/rtc` query by the control
/// thread. The shard never sees the raw token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinParams {
    pub room: String,
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub attributes: HashMap<String, String>,
    pub kind: i32,
    pub permission: lk::ParticipantPermission,
    pub auto_subscribe: bool,
    /// The SDK sizes video to its elements: start simulcast tracks on the low layer.
    pub adaptive_stream: bool,
    pub client: lk::ClientInfo,
    /// May the join create the room (`room.auto_create`)?
    pub auto_create: bool,
    /// `/rtc/v1`: one peer connection both ways, the client always offers.
    pub single_pc: bool,
    /// `/rtc/v1` join-with-offer: the client's first offer and the tracks it announces
    /// with it, handled right after the join in LiveKit's order (tracks, then offer).
    pub add_tracks: Vec<lk::AddTrackRequest>,
    pub offer: Option<lk::SessionDescription>,
}

pub struct Participant {
    pub info: lk::ParticipantInfo,
    pub conn: ConnId,
    pub auto_subscribe: bool,
    pub adaptive_stream: bool,
    pub media: ParticipantMedia,
    /// Its signal connection dropped without a leave: it stays (media keeps flowing)
    /// until then, for the client to resume (`room::resume`).
    pub departs_at: Option<Instant>,
    /// The highest `sequence` of the reliable data packets it sent: the client resends
    /// what came after it when it resumes, and a resent packet is delivered once.
    pub last_reliable_seq: u32,
    /// The (version, published tracks) last sent to the other shards of a spread room
    /// (`spread::take_spread`); unused for a room on one shard and for proxies.
    pub mirrored: Option<(u32, usize)>,
}

/// A track announced with AddTrackRequest whose m-line has not arrived yet.
#[derive(Debug, Clone)]
pub struct PendingTrack {
    pub cid: String,
    pub info: lk::TrackInfo,
}

/// The participant's peer connections and what rides on them.
#[derive(Default)]
pub struct ParticipantMedia {
    /// `/rtc/v1`: `publisher` is the one PC both ways (`PeerRole::Single`) and
    /// `subscriber` stays empty.
    pub single_pc: bool,
    /// Boxed: a session is 10 KB (str0m's `Rtc`), and a participant sits in its room's
    /// slot vector; most have one of the two (`/rtc/v1`).
    pub publisher: Option<Box<PeerSession>>,
    pub subscriber: Option<Box<PeerSession>>,
    /// Since when ICE has lost the peer, per side (publisher, subscriber): the
    /// participant leaves if it does not come back within `resume::ICE_GRACE`.
    pub ice_lost: [Option<Instant>; 2],
    /// `rtc.allow_tcp_fallback`: what its peer connections may use, and their failures.
    pub ice: super::ice_fallback::ParticipantIce,
    pub publisher_deadline: Option<Instant>,
    pub subscriber_deadline: Option<Instant>,
    /// Trickled before the PC existed (the client may trickle before its offer lands).
    pub early_candidates: Vec<(i32, String)>,
    pub pending_tracks: Vec<PendingTrack>,
    /// Publisher mid → track sid.
    /// Shared, so that forwarding names the track without allocating per packet.
    pub published: HashMap<Mid, std::sync::Arc<str>>,
    /// Track sid → downtrack on the subscriber PC.
    pub downtracks: DownTracks,
    /// Subscriptions over `limit.subscription_limit_*`, oldest first, with their
    /// publisher's sid: they start when a slot of their kind frees.
    pub waiting: Vec<(String, lk::TrackInfo)>,
    /// Dynacast: the qualities last announced to this publisher, per track sid.
    pub sent_qualities: HashMap<String, std::collections::BTreeSet<i32>>,
    /// Downlink estimate of the subscriber PC, for the stream allocator.
    pub link: LinkEstimator,
    /// Link figures of both PCs, for connection quality.
    pub quality: QualityInputs,
    /// The connection quality last sent for this participant.
    pub sent_quality: Option<i32>,
    pub offer_id: u32,
    /// v0: our subscriber offer waits for its answer. Single PC: we asked the client
    /// for an offer (`MediaSectionsRequirement`) and it has not come yet.
    pub awaiting_answer: bool,
    pub needs_offer: bool,
    pub connected: bool,
}

impl ParticipantMedia {
    /// The PC subscribed tracks and data go out on.
    pub fn down_session(&mut self) -> Option<&mut PeerSession> {
        self.down_parts().1
    }

    /// The session of `side`; a single PC (`/rtc/v1`) is both.
    pub fn session(&mut self, side: super::media::Side) -> Option<&mut PeerSession> {
        self.session_and_deadline(side).map(|(session, _)| session)
    }

    /// The session of `side` with its next deadline (`Rooms::tick` keeps it).
    pub fn session_and_deadline(
        &mut self,
        side: super::media::Side,
    ) -> Option<(&mut PeerSession, &mut Option<Instant>)> {
        match side {
            super::media::Side::Subscriber if !self.single_pc => Some((
                self.subscriber.as_deref_mut()?,
                &mut self.subscriber_deadline,
            )),
            _ => Some((self.publisher.as_deref_mut()?, &mut self.publisher_deadline)),
        }
    }

    /// The downtracks and the PC they go out on, borrowed apart.
    pub fn down_parts(&mut self) -> (&mut DownTracks, Option<&mut PeerSession>) {
        let session = if self.single_pc {
            self.publisher.as_deref_mut()
        } else {
            self.subscriber.as_deref_mut()
        };
        (&mut self.downtracks, session)
    }

    /// After a negotiation: each downtrack learns the m-line it went on, and the
    /// result is what `SessionDescription.mid_to_track_id` names.
    pub fn learn_mids(&mut self) -> HashMap<String, String> {
        let (downtracks, Some(session)) = self.down_parts() else {
            return HashMap::new();
        };
        for (sid, down) in downtracks.iter_mut() {
            down.mid = session.send_track_mid(sid);
        }
        session
            .send_track_mids()
            .into_iter()
            .map(|(mid, sid)| (mid.to_string(), sid.to_string()))
            .collect()
    }

    /// Whether the PC subscribed tracks go out on exists.
    pub fn has_down_session(&self) -> bool {
        if self.single_pc {
            self.publisher.is_some()
        } else {
            self.subscriber.is_some()
        }
    }

    /// Stops the subscription to `track_sid`, or its wait for a free slot: the
    /// downtrack goes, and its m-line leaves with the next subscriber offer.
    pub fn drop_downtrack(&mut self, track_sid: &str) {
        self.waiting.retain(|(_, t)| t.sid != track_sid);
        if self.downtracks.remove(track_sid).is_some() {
            if let Some(session) = self.down_session() {
                if session.remove_send_track(track_sid).is_ok() {
                    self.needs_offer = true;
                }
            }
        }
    }
}

impl Participant {
    pub fn hidden(&self) -> bool {
        self.info.permission.as_ref().is_some_and(|p| p.hidden)
    }

    pub fn can_update_metadata(&self) -> bool {
        self.info
            .permission
            .as_ref()
            .is_some_and(|p| p.can_update_metadata)
    }

    /// Records a change: LiveKit clients ignore updates whose version is not newer.
    pub fn bump(&mut self) {
        self.info.version = self.info.version.wrapping_add(1);
    }
}

/// Maps a grant's source names to LiveKit's TrackSource numbers.
pub fn source_numbers(names: &[String]) -> Vec<i32> {
    names
        .iter()
        .filter_map(|n| match n.to_ascii_lowercase().as_str() {
            "camera" => Some(lk::TrackSource::Camera as i32),
            "microphone" => Some(lk::TrackSource::Microphone as i32),
            "screen_share" => Some(lk::TrackSource::ScreenShare as i32),
            "screen_share_audio" => Some(lk::TrackSource::ScreenShareAudio as i32),
            _ => None,
        })
        .collect()
}

pub fn leave(reason: lk::DisconnectReason, action: lk::leave_request::Action) -> lk::LeaveRequest {
    lk::LeaveRequest {
        can_reconnect: action != lk::leave_request::Action::Disconnect,
        reason: reason as i32,
        action: action as i32,
        regions: None,
    }
}

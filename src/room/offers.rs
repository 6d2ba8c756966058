//! The server's side of negotiation: on v0 it offers the subscriber PC (tracks, data
//! channels, an ICE restart after a resume); on v1 it only answers, so it asks the
//! client to offer again (`MediaSectionsRequirement`) and names what each answer carries.

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;
use tracing::debug;

use std::collections::HashMap;

use super::demux::Demux;
use super::media::Side;
use super::one_room::Room;
use super::participant::{ConnId, Participant};
use super::room_ops::{reply, Outbound};

impl Room {
    /// Sends a subscriber offer to every participant of the room with changes queued
    /// and no offer outstanding (a single PC's client is asked to offer instead).
    pub(super) fn send_pending_offers(&mut self, demux: &mut Demux, out: &mut Vec<Outbound>) {
        let waiting = (self.participants.values_mut())
            .filter(|p| p.media.needs_offer && !p.media.awaiting_answer);
        for p in waiting {
            let conn = p.conn;
            if p.media.single_pc {
                ask_for_offer(p, conn, out);
            } else if let Some(offer) = subscriber_offer(p, demux) {
                reply(out, conn, offer);
            }
        }
    }
}

/// v0: the subscriber offer for what is queued on the participant's subscriber PC, if
/// anything is and no offer is outstanding. An ICE restart in it brings a new ufrag,
/// which the demux learns now (the old one stays until the answer).
pub(super) fn subscriber_offer(p: &mut Participant, demux: &mut Demux) -> Option<Resp> {
    let conn = p.conn;
    if p.media.awaiting_answer {
        return None;
    }
    let session = p.media.subscriber.as_mut()?;
    let sdp = match session.create_offer() {
        Ok(Some(sdp)) => sdp,
        Ok(None) => {
            p.media.needs_offer = false;
            return None;
        }
        Err(e) => {
            debug!(conn, error = %e, "cannot create subscriber offer");
            return None;
        }
    };
    let restarted = session.restart_ufrag();
    p.media.offer_id += 1;
    p.media.awaiting_answer = true;
    p.media.needs_offer = false;
    let mid_to_track_id = p.media.learn_mids();
    let id = p.media.offer_id;
    if let Some(ufrag) = restarted {
        demux.add_ufrag(ufrag, (conn, Side::Subscriber));
    }
    Some(Resp::Offer(lk::SessionDescription {
        r#type: "offer".into(),
        sdp,
        id,
        mid_to_track_id,
    }))
}

/// Single PC, after an answer: the downtracks learn the lines they went on, and the
/// answer names them (`mid_to_track_id`). Empty for v0 publisher PCs.
pub(super) fn settle_single_pc(p: &mut Participant) -> HashMap<String, String> {
    if p.media.single_pc {
        p.media.learn_mids()
    } else {
        HashMap::new()
    }
}

/// Single PC: asks the client to offer again (adding the lines our waiting tracks
/// need), unless nothing waits or an earlier ask is still unanswered.
pub(super) fn ask_for_offer(p: &mut Participant, conn: ConnId, out: &mut Vec<Outbound>) {
    p.media.needs_offer = false;
    if p.media.awaiting_answer {
        // Asked already: its offer comes, and this is looked at again then.
        return;
    }
    let Some(wanted) = p.media.publisher.as_mut().and_then(|s| s.sections_wanted()) else {
        return;
    };
    p.media.awaiting_answer = true;
    debug!(conn, ?wanted, "asking the client to offer again");
    reply(
        out,
        conn,
        Resp::MediaSectionsRequirement(lk::MediaSectionsRequirement {
            num_audios: wanted.audios,
            num_videos: wanted.videos,
        }),
    );
}

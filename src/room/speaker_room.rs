//! Speaker updates for a room: its detector is polled, and SpeakersChanged (changes
//! only) goes to its participants.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::one_room::Room;
use super::room_ops::Outbound;

/// How often detectors are asked for changes; they rate-limit level-only updates to
/// 500 ms themselves, but a new speaker is reported at the next poll.
pub(super) const POLL_EVERY: Duration = Duration::from_millis(100);

impl Room {
    /// Sends SpeakersChanged if the room's active speakers changed.
    pub(super) fn poll_speakers(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        let Some(detector) = self.speakers.as_mut() else {
            return;
        };
        let speakers = detector.poll(now);
        if !speakers.is_empty() {
            self.send_to_all(Resp::SpeakersChanged(lk::SpeakersChanged { speakers }), out);
        }
    }

    /// A participant left: it stops speaking for everyone.
    pub(super) fn forget_speaker(&mut self, participant_sid: &str) {
        if let Some(detector) = self.speakers.as_mut() {
            detector.remove(participant_sid);
        }
    }
}

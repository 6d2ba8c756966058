//! Speaker updates for rooms: polls each room's detector and sends SpeakersChanged
//! (changes only) to its participants.

use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_response::Message as Resp;

use super::room_ops::Outbound;
use super::rooms::Rooms;

/// How often detectors are asked for changes; they rate-limit level-only updates to
/// 500 ms themselves, but a new speaker is reported at the next poll.
const POLL_EVERY: Duration = Duration::from_millis(100);

impl Rooms {
    /// Sends SpeakersChanged where a room's active speakers changed.
    pub fn tick_speakers(&mut self, now: Instant, out: &mut Vec<Outbound>) {
        if self.next_speaker_poll.is_some_and(|at| now < at) {
            return;
        }
        self.next_speaker_poll = Some(now + POLL_EVERY);
        for r in self.rooms.values_mut() {
            let Some(detector) = r.speakers.as_mut() else {
                continue;
            };
            let speakers = detector.poll(now);
            if speakers.is_empty() {
                continue;
            }
            let msg = Resp::SpeakersChanged(lk::SpeakersChanged { speakers });
            for p in r.participants.values() {
                out.push(Outbound::Signal {
                    conn: p.conn,
                    response: Box::new(lk::SignalResponse {
                        message: Some(msg.clone()),
                    }),
                });
            }
        }
    }

    /// A participant left: it stops speaking for everyone.
    pub(super) fn forget_speaker(&mut self, room: &str, participant_sid: &str) {
        if let Some(detector) = self.rooms.get_mut(room).and_then(|r| r.speakers.as_mut()) {
            detector.remove(participant_sid);
        }
    }
}

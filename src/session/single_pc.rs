//! The sending half of a single peer connection (LiveKit `/rtc/v1`). The client always
//! offers and the server only answers, so subscribed tracks ride on the `recvonly`
//! m-lines the client offers ("slots"): each answer puts a waiting track on a free slot
//! of its kind, names it in `a=msid` (`PA_x|TR_y TR_y`, how the SDKs find its
//! participant) and in `mid_to_track_id`, and makes free slots `inactive`. When no
//! slot is free the room asks the client for more (`MediaSectionsRequirement`).
//!
//! A slot whose track went is answered `inactive` from then on and never carries
//! another track: the Rust SDK (libwebrtc) did not decode a track put on a recycled
//! line, so lines are not recycled (LiveKit recycles them). A session's SDP thus grows
//! by one section per subscription it ever had.

use str0m::media::{MediaKind, Mid};

use super::OfferedMedia;

#[derive(Debug, Clone)]
struct SlotTrack {
    stream_id: String,
    track_id: String,
}

#[derive(Debug)]
struct Slot {
    mid: Mid,
    kind: MediaKind,
    /// The client sends on this line too (`sendrecv`): without a track of ours it is
    /// answered `recvonly`, not `inactive`.
    client_sends: bool,
    track: Option<SlotTrack>,
    /// Its track went and the client has not been answered `inactive` for it yet.
    freed: bool,
    /// It carried a track once: it stays `inactive` (see the module docs).
    used: bool,
}

impl Slot {
    /// Free for a waiting track of `kind`: never used (a slot that carried a track
    /// stays retired, see the module docs).
    fn free_for(&self, kind: MediaKind) -> bool {
        self.kind == kind && !self.used
    }
}

/// What the room should ask of the client: how many more sections of each kind to
/// add before its next offer (both 0: just offer again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionsWanted {
    pub audios: u32,
    pub videos: u32,
}

#[derive(Debug, Default)]
pub(super) struct SendSlots {
    slots: Vec<Slot>,
    /// Tracks waiting for a slot, oldest first.
    queued: Vec<(MediaKind, SlotTrack)>,
    /// Sections asked for and not offered yet, per kind (audio, video).
    requested: (u32, u32),
}

impl SendSlots {
    pub fn add(&mut self, kind: MediaKind, stream_id: &str, track_id: &str) {
        let known = self
            .slots
            .iter()
            .filter_map(|s| s.track.as_ref())
            .chain(self.queued.iter().map(|(_, t)| t))
            .any(|t| t.track_id == track_id);
        if !known {
            let track = SlotTrack {
                stream_id: stream_id.to_string(),
                track_id: track_id.to_string(),
            };
            self.queued.push((kind, track));
        }
    }

    /// Whether the track was known (waiting or on a slot).
    pub fn remove(&mut self, track_id: &str) -> bool {
        let before = self.queued.len();
        self.queued.retain(|(_, t)| t.track_id != track_id);
        if self.queued.len() != before {
            return true;
        }
        match self
            .slots
            .iter_mut()
            .find(|s| s.track.as_ref().is_some_and(|t| t.track_id == track_id))
        {
            Some(slot) => {
                slot.track = None;
                slot.freed = true;
                true
            }
            None => false,
        }
    }

    pub fn mid_of(&self, track_id: &str) -> Option<Mid> {
        self.slots
            .iter()
            .find(|s| s.track.as_ref().is_some_and(|t| t.track_id == track_id))
            .map(|s| s.mid)
    }

    pub fn mids(&self) -> impl Iterator<Item = (Mid, &str)> {
        self.slots
            .iter()
            .filter_map(|s| Some((s.mid, s.track.as_ref()?.track_id.as_str())))
    }

    /// Whether the client must offer again: a track waits, or a freed slot must be
    /// answered `inactive`.
    pub fn has_changes(&self) -> bool {
        !self.queued.is_empty() || self.slots.iter().any(|s| s.freed)
    }

    /// What to ask the client for, `None` when nothing needs an offer.
    pub fn wanted(&mut self) -> Option<SectionsWanted> {
        if !self.has_changes() {
            return None;
        }
        let mut want = SectionsWanted::default();
        for (kind, asked, out) in [
            (MediaKind::Audio, &mut self.requested.0, &mut want.audios),
            (MediaKind::Video, &mut self.requested.1, &mut want.videos),
        ] {
            let waiting = self.queued.iter().filter(|(k, _)| *k == kind).count();
            let free = self.slots.iter().filter(|s| s.free_for(kind)).count();
            let more = waiting.saturating_sub(free + *asked as usize) as u32;
            *out = more;
            *asked += more;
        }
        Some(want)
    }

    /// A client offer: learns its receiving m-lines and puts waiting tracks on free
    /// ones. Call before [`rewrite_answer`](Self::rewrite_answer).
    pub fn on_offer(&mut self, offered: &[OfferedMedia]) {
        // Lines the client no longer receives on give their track back to the queue.
        let receiving = |m: &OfferedMedia| !m.disabled && m.direction.contains("recv");
        let mut lost = Vec::new();
        self.slots
            .retain_mut(|slot| match offered.iter().find(|m| m.mid == slot.mid) {
                None => true, // not in this offer: unchanged
                Some(m) if receiving(m) => {
                    slot.client_sends = m.direction.contains("send");
                    true
                }
                Some(_) => {
                    if let Some(t) = slot.track.take() {
                        lost.push((slot.kind, t));
                    }
                    false
                }
            });
        self.queued.splice(0..0, lost);
        for m in offered.iter().filter(|m| receiving(m)) {
            if self.slots.iter().any(|s| s.mid == m.mid) {
                continue;
            }
            let asked = match m.kind {
                MediaKind::Audio => &mut self.requested.0,
                MediaKind::Video => &mut self.requested.1,
            };
            *asked = asked.saturating_sub(1);
            self.slots.push(Slot {
                mid: m.mid,
                kind: m.kind,
                client_sends: m.direction.contains("send"),
                track: None,
                freed: false,
                used: false,
            });
        }
        let mut waiting = std::mem::take(&mut self.queued);
        waiting.retain(|(kind, track)| {
            let free = self.slots.iter_mut().find(|s| s.free_for(*kind));
            match free {
                Some(slot) => {
                    slot.track = Some(track.clone());
                    slot.used = true;
                    false
                }
                None => true,
            }
        });
        self.queued = waiting;
    }

    /// Our answer with each slot's msid and direction; freed slots are free afterwards.
    pub fn rewrite_answer(&mut self, answer: &str) -> String {
        let out = rewrite_sections(answer, |mid| {
            let slot = self.slots.iter().find(|s| s.mid == mid)?;
            Some(match &slot.track {
                Some(t) => Edit::Send(&t.stream_id, &t.track_id),
                None if slot.client_sends => Edit::Direction("recvonly"),
                None => Edit::Direction("inactive"),
            })
        });
        for s in &mut self.slots {
            s.freed = false;
        }
        out
    }
}

enum Edit<'a> {
    /// Sending this track: `a=msid` (and the ssrc msid lines) name it.
    Send(&'a str, &'a str),
    /// Not sending: this direction, and no msid or ssrc lines.
    Direction(&'static str),
}

fn is_direction(line: &str) -> bool {
    matches!(
        line,
        "a=sendonly" | "a=recvonly" | "a=sendrecv" | "a=inactive"
    )
}

/// Applies `edit` to each m-section by its mid; other lines pass unchanged.
fn rewrite_sections<'a>(sdp: &str, edit: impl Fn(Mid) -> Option<Edit<'a>>) -> String {
    let mut out = String::with_capacity(sdp.len() + 256);
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(s) = sections.last_mut() {
            s.push(line);
        }
    }
    for (i, section) in sections.iter().enumerate() {
        let mid = section
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| Mid::from(m.trim()));
        let change = if i == 0 { None } else { mid.and_then(&edit) };
        for line in section {
            let written = match &change {
                None => Some(line.to_string()),
                Some(Edit::Send(stream, track)) => {
                    if line.starts_with("a=msid:") {
                        Some(format!("a=msid:{stream} {track}"))
                    } else if is_direction(line) && *line != "a=sendrecv" {
                        Some("a=sendonly".to_string())
                    } else {
                        match ssrc_msid(line) {
                            Some(ssrc) => Some(format!("a=ssrc:{ssrc} msid:{stream} {track}")),
                            None => Some(line.to_string()),
                        }
                    }
                }
                Some(Edit::Direction(dir)) => {
                    if is_direction(line) {
                        Some(format!("a={dir}"))
                    } else if line.starts_with("a=msid:")
                        || line.starts_with("a=ssrc:")
                        || line.starts_with("a=ssrc-group:")
                    {
                        None
                    } else {
                        Some(line.to_string())
                    }
                }
            };
            if let Some(l) = written {
                out.push_str(&l);
                out.push_str("\r\n");
            }
        }
    }
    out
}

/// The SSRC of an `a=ssrc:<n> msid:...` line.
fn ssrc_msid(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("a=ssrc:")?;
    let (ssrc, attr) = rest.split_once(' ')?;
    attr.starts_with("msid:").then_some(ssrc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(mid: &str, kind: MediaKind, direction: &str) -> OfferedMedia {
        OfferedMedia {
            mid: Mid::from(mid),
            kind,
            msid_stream: None,
            msid_track: None,
            rids: Vec::new(),
            direction: direction.into(),
            disabled: false,
        }
    }

    const ANSWER: &str = "v=0\r\na=msid-semantic: WMS x\r\nm=video 9 UDP 96\r\na=mid:1\r\na=sendonly\r\na=msid:rand rtrack\r\na=ssrc:11 cname:c\r\na=ssrc:11 msid:rand rtrack\r\na=ssrc-group:FID 11 12\r\nm=audio 9 UDP 111\r\na=mid:2\r\na=sendonly\r\na=msid:r2 t2\r\n";

    #[test]
    fn waiting_tracks_take_free_slots_of_their_kind_and_are_named() {
        let mut s = SendSlots::default();
        s.add(MediaKind::Video, "PA_a|TR_v", "TR_v");
        s.add(MediaKind::Video, "PA_a|TR_v", "TR_v");
        assert_eq!(
            s.wanted(),
            Some(SectionsWanted {
                audios: 0,
                videos: 1
            })
        );
        // Asked once: the same wait is not asked for again.
        assert_eq!(s.wanted(), Some(SectionsWanted::default()));
        s.on_offer(&[
            line("1", MediaKind::Video, "recvonly"),
            line("2", MediaKind::Audio, "recvonly"),
        ]);
        assert_eq!(s.mid_of("TR_v"), Some(Mid::from("1")));
        let answer = s.rewrite_answer(ANSWER);
        assert!(answer.contains("a=msid:PA_a|TR_v TR_v\r\n"), "{answer}");
        assert!(answer.contains("a=ssrc:11 msid:PA_a|TR_v TR_v\r\n"));
        assert!(answer.contains("a=mid:2\r\na=inactive\r\n"), "{answer}");
        assert!(!answer.contains("a=msid:r2"), "a free slot names nothing");
        assert!(!s.has_changes());
        assert_eq!(s.wanted(), None);
    }

    #[test]
    fn a_freed_slot_goes_inactive_and_is_not_recycled() {
        let mut s = SendSlots::default();
        s.add(MediaKind::Video, "PA_a|TR_1", "TR_1");
        let offer = [line("1", MediaKind::Video, "recvonly")];
        s.on_offer(&offer);
        s.rewrite_answer(ANSWER);
        assert!(s.remove("TR_1"));
        assert!(
            s.has_changes(),
            "the client must hear the line went inactive"
        );
        s.on_offer(&offer);
        let answer = s.rewrite_answer(ANSWER);
        assert!(answer.contains("a=mid:1\r\na=inactive\r\n"), "{answer}");
        assert!(!s.has_changes());
        // Another track, or the same one again, needs a new line.
        s.add(MediaKind::Video, "PA_b|TR_2", "TR_2");
        s.add(MediaKind::Video, "PA_a|TR_1", "TR_1");
        assert_eq!(
            s.wanted(),
            Some(SectionsWanted {
                audios: 0,
                videos: 2
            })
        );
        s.on_offer(&offer);
        assert_eq!(s.mids().count(), 0);
        let answer = s.rewrite_answer(ANSWER);
        assert!(answer.contains("a=mid:1\r\na=inactive\r\n"), "{answer}");
        let more = [
            offer[0].clone(),
            line("2", MediaKind::Video, "recvonly"),
            line("3", MediaKind::Video, "recvonly"),
        ];
        s.on_offer(&more);
        assert_eq!(s.mid_of("TR_2"), Some(Mid::from("2")));
        assert_eq!(s.mid_of("TR_1"), Some(Mid::from("3")));
    }

    #[test]
    fn a_line_the_client_stops_receiving_on_returns_its_track_to_the_queue() {
        let mut s = SendSlots::default();
        s.add(MediaKind::Audio, "PA_a|TR_a", "TR_a");
        s.on_offer(&[line("2", MediaKind::Audio, "recvonly")]);
        assert!(s.mid_of("TR_a").is_some());
        let mut gone = line("2", MediaKind::Audio, "recvonly");
        gone.disabled = true;
        s.on_offer(&[gone, line("3", MediaKind::Audio, "recvonly")]);
        assert_eq!(s.mid_of("TR_a"), Some(Mid::from("3")));
        assert!(!s.remove("TR_x"));
        assert!(s.remove("TR_a"));
    }
}

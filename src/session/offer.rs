//! Subscriber PC negotiation: sendonly tracks and data channels are queued, and one offer
//! at a time carries them (str0m invalidates a pending offer on any other change and only
//! picks mids when the offer is made).

use str0m::change::SdpAnswer;
use str0m::channel::{ChannelConfig, Reliability};
use str0m::media::{Direction, MediaKind, Mid};

use super::sdp_info::{first_mid_in, normalize};
use super::{PeerRole, PeerSession, SessionError};

/// A sendonly track of a subscriber PC. `mid` is set once an offer carries it.
#[derive(Debug)]
pub(super) struct SendTrack {
    track_id: String,
    stream_id: String,
    kind: MediaKind,
    mid: Option<Mid>,
    /// Part of the offer waiting for its answer.
    in_flight: bool,
    /// Back on its parked m-line (see `PeerSession::parked`): the next offer makes
    /// that line sendonly again instead of adding one; `reactivating` while that
    /// offer waits for its answer.
    reactivate: bool,
    reactivating: bool,
}

/// A subscriber PC's ICE restart (`restart_ice`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum IceRestart {
    #[default]
    None,
    Queued,
    /// In the outstanding offer, with the ufrag it brings.
    Offered(String),
}

/// Where LiveKit's `_reliable`/`_lossy` channels are on a subscriber PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channels {
    NotWanted,
    Queued,
    /// In the offer waiting for its answer.
    InFlight,
    Negotiated,
}

impl PeerSession {
    /// Subscriber PC: queues a sendonly track with `a=msid:<stream_id> <track_id>`
    /// (LiveKit: `PA_xxx|TR_yyy` and `TR_yyy`). str0m picks mids only when an offer is
    /// made, so the mid is known after [`create_offer`](Self::create_offer): see
    /// [`send_track_mid`](Self::send_track_mid). `track_id` names the track from now on.
    pub fn add_send_track(
        &mut self,
        kind: MediaKind,
        stream_id: &str,
        track_id: &str,
    ) -> Result<(), SessionError> {
        match self.role {
            PeerRole::Subscriber => {}
            PeerRole::Single => {
                self.slots.add(kind, stream_id, track_id);
                return Ok(());
            }
            PeerRole::Publisher => return Err(SessionError::WrongRole(self.role)),
        }
        if self.send_tracks.iter().any(|t| t.track_id == track_id) {
            return Ok(());
        }
        // The same track again on the line it was parked on: a second line with the
        // same msid would make libwebrtc refuse the offer ("Duplicate a=msid lines").
        let parked = self.parked.iter().position(|(_, t)| t == track_id);
        let mid = parked.map(|i| self.parked.remove(i).0);
        if let Some(mid) = mid {
            // A removal not offered yet is simply dropped.
            self.removals
                .retain(|(m, in_flight)| *m != mid || *in_flight);
        }
        self.send_tracks.push(SendTrack {
            track_id: track_id.to_string(),
            stream_id: stream_id.to_string(),
            kind,
            mid,
            in_flight: false,
            reactivate: mid.is_some(),
            reactivating: false,
        });
        Ok(())
    }

    /// The mid of a send track, once an offer carried it (it changes if that offer failed).
    pub fn send_track_mid(&self, track_id: &str) -> Option<Mid> {
        if self.role == PeerRole::Single {
            return self.slots.mid_of(track_id);
        }
        self.send_tracks
            .iter()
            .find(|t| t.track_id == track_id)
            .and_then(|t| t.mid)
    }

    /// Every send track with a mid, for `SessionDescription.mid_to_track_id`.
    pub fn send_track_mids(&self) -> Vec<(Mid, &str)> {
        if self.role == PeerRole::Single {
            return self.slots.mids().collect();
        }
        self.send_tracks
            .iter()
            .filter_map(|t| Some((t.mid?, t.track_id.as_str())))
            .collect()
    }

    /// Subscriber PC: stops a send track in the next offer (port 0; the m-line can be
    /// recycled; the BUNDLE tag is made inactive instead). A track no offer carried
    /// yet is simply forgotten.
    pub fn remove_send_track(&mut self, track_id: &str) -> Result<(), SessionError> {
        if self.role == PeerRole::Single {
            return match self.slots.remove(track_id) {
                true => Ok(()),
                false => Err(SessionError::UnknownTrack(track_id.to_string())),
            };
        }
        let i = self
            .send_tracks
            .iter()
            .position(|t| t.track_id == track_id)
            .ok_or_else(|| SessionError::UnknownTrack(track_id.to_string()))?;
        let track = self.send_tracks.remove(i);
        if let Some(mid) = track.mid {
            self.removals.retain(|(m, _)| *m != mid);
            self.removals.push((mid, false));
            if Some(mid) == self.bundle_mid {
                self.parked.push((mid, track.track_id));
            }
        }
        Ok(())
    }

    /// Subscriber PC: queues LiveKit's `_reliable` (ordered) and `_lossy` (unordered,
    /// no retransmits) data channels, opened by us in-band (DCEP) after the next answer.
    pub fn open_data_channels(&mut self) -> Result<(), SessionError> {
        if self.role != PeerRole::Subscriber {
            return Err(SessionError::WrongRole(self.role));
        }
        if self.channels_state == Channels::NotWanted {
            self.channels_state = Channels::Queued;
        }
        Ok(())
    }

    /// Subscriber PC: the next offer restarts ICE (new credentials), as LiveKit's server
    /// does when a v0 client resumes: its network may have changed.
    pub fn restart_ice(&mut self) {
        if self.role == PeerRole::Subscriber {
            self.ice_restart = IceRestart::Queued;
        }
    }

    /// The ufrag an offered ICE restart brings, until its answer is in (str0m switches
    /// to it then; the client's checks may come first).
    pub fn restart_ufrag(&self) -> Option<String> {
        match &self.ice_restart {
            IceRestart::Offered(ufrag) => Some(ufrag.clone()),
            _ => None,
        }
    }

    /// Whether queued changes wait for an offer.
    pub fn has_queued_changes(&self) -> bool {
        if self.role == PeerRole::Single {
            return self.slots.has_changes();
        }
        self.ice_restart == IceRestart::Queued
            || self.channels_state == Channels::Queued
            || self
                .send_tracks
                .iter()
                .any(|t| t.mid.is_none() || t.reactivate)
            || self.removals.iter().any(|(_, in_flight)| !in_flight)
    }

    /// Single PC: the sections to ask the client for before it offers again, `None`
    /// when nothing waits for an offer (see `single_pc`).
    pub fn sections_wanted(&mut self) -> Option<super::SectionsWanted> {
        match self.role {
            PeerRole::Single => self.slots.wanted(),
            _ => None,
        }
    }

    /// Subscriber PC: an offer for everything queued, `None` if nothing is. Only one offer
    /// may wait for its answer; queue more changes and offer again after it.
    pub fn create_offer(&mut self) -> Result<Option<String>, SessionError> {
        self.guarded(|s| s.create_offer_unguarded())
    }

    fn create_offer_unguarded(&mut self) -> Result<Option<String>, SessionError> {
        if self.role != PeerRole::Subscriber {
            return Err(SessionError::WrongRole(self.role));
        }
        if self.pending.is_some() {
            return Err(SessionError::OfferOutstanding);
        }
        if !self.has_queued_changes() {
            return Ok(None);
        }
        let mut api = self.rtc.sdp_api();
        if self.ice_restart == IceRestart::Queued {
            let creds = api.ice_restart(true);
            self.ice_restart = IceRestart::Offered(creds.ufrag);
        }
        for t in self.send_tracks.iter_mut().filter(|t| t.mid.is_none()) {
            let mid = api.add_media(
                t.kind,
                Direction::SendOnly,
                Some(t.stream_id.clone()),
                Some(t.track_id.clone()),
                None,
            );
            t.mid = Some(mid);
            t.in_flight = true;
        }
        for t in self.send_tracks.iter_mut().filter(|t| t.reactivate) {
            if let Some(mid) = t.mid {
                api.set_direction(mid, Direction::SendOnly);
            }
            t.reactivate = false;
            t.reactivating = true;
        }
        for (mid, in_flight) in self.removals.iter_mut().filter(|(_, f)| !f) {
            if Some(*mid) == self.bundle_mid {
                // Stopping the BUNDLE tag (port 0) takes it out of the group, and
                // libwebrtc then tears down the shared transport: it aborts the SCTP
                // association, which ends the whole PC. Inactive keeps the transport.
                api.set_direction(*mid, Direction::Inactive);
            } else {
                api.stop_media(*mid);
            }
            *in_flight = true;
        }
        if self.channels_state == Channels::Queued {
            api.add_channel("_reliable".into());
            api.add_channel_with_config(ChannelConfig {
                label: "_lossy".into(),
                ordered: false,
                reliability: Reliability::MaxRetransmits { retransmits: 0 },
                ..Default::default()
            });
            self.channels_state = Channels::InFlight;
        }
        let applied = api.apply();
        self.tx_routes.forget();
        match applied {
            Some((offer, pending)) => {
                let sdp = offer.to_sdp_string();
                self.bundle_mid = self.bundle_mid.or_else(|| first_mid_in(&sdp));
                self.pending = Some(pending);
                Ok(Some(sdp))
            }
            None => {
                // Nothing needed negotiating (e.g. stopping what never got an answer).
                self.settle(true);
                Ok(None)
            }
        }
    }

    /// Subscriber PC: the client's answer to our outstanding offer. On failure the offer's
    /// changes are queued again (tracks get new mids in the next offer).
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), SessionError> {
        self.guarded(|s| s.accept_answer_unguarded(sdp))
    }

    fn accept_answer_unguarded(&mut self, sdp: &str) -> Result<(), SessionError> {
        let Some(pending) = self.pending.take() else {
            return Err(SessionError::NoPendingOffer);
        };
        self.tx_routes.forget();
        let result = normalize(sdp)
            .and_then(|s| {
                SdpAnswer::from_sdp_string(&s).map_err(|e| SessionError::Sdp(e.to_string()))
            })
            .and_then(|answer| {
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| SessionError::Negotiation(e.to_string()))
            });
        self.settle(result.is_ok());
        if result.is_ok() {
            self.forget_gone_streams();
        }
        result
    }

    /// Ends the outstanding offer: keeps its changes, or queues them again.
    fn settle(&mut self, ok: bool) {
        if let IceRestart::Offered(_) = self.ice_restart {
            self.ice_restart = if ok {
                self.ufrag = self.rtc.direct_api().local_ice_credentials().ufrag;
                IceRestart::None
            } else {
                IceRestart::Queued
            };
        }
        for t in self.send_tracks.iter_mut().filter(|t| t.in_flight) {
            t.in_flight = false;
            if !ok {
                t.mid = None;
            }
        }
        for t in self.send_tracks.iter_mut().filter(|t| t.reactivating) {
            t.reactivating = false;
            t.reactivate = !ok;
        }
        if ok {
            self.removals.retain(|(_, in_flight)| !in_flight);
        } else {
            self.removals.retain(|(_, in_flight)| *in_flight);
            for r in &mut self.removals {
                r.1 = false;
            }
        }
        if self.channels_state == Channels::InFlight {
            self.channels_state = if ok {
                Channels::Negotiated
            } else {
                Channels::Queued
            };
        }
    }
}

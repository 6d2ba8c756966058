//! The media plane of a [`PeerSession`]: draining str0m's output into our events,
//! RTP in and out, keyframe requests and data channel messages.

use std::sync::Arc;
use std::time::Instant;

use str0m::format::{self, Codec};
use str0m::media::{KeyframeRequestKind, Mid, Rid};
use str0m::rtp::RtpPacket;
use str0m::{Event, IceConnectionState, Output};

use super::own_egress::{OwnEgressError, OwnRoute};
use super::{
    Flow, LinkStats, Loss, PayloadType, PeerSession, RtpIn, SessionError, SessionEvent, Transmit,
    Transport,
};

impl PeerSession {
    /// Drains str0m's output: transmits and events are pushed, the next deadline returned
    /// (it can be in the past: call `handle_timeout` then). An error ends the session.
    pub fn drain(
        &mut self,
        out: &mut Vec<Transmit>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<Instant, SessionError> {
        if self.str0m_idle(self.last_now) {
            // Only our own packets: str0m has nothing new to say.
            self.drain_own(out, events);
            return Ok(self.str0m_deadline);
        }
        self.guarded(|s| s.drain_unguarded(out, events))
    }

    fn drain_unguarded(
        &mut self,
        out: &mut Vec<Transmit>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<Instant, SessionError> {
        self.flush_data()?;
        self.drain_own(out, events);
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.str0m_deadline = t;
                    self.str0m_touched = false;
                    return Ok(self.str0m_deadline);
                }
                Output::Transmit(t) => {
                    let mut t = Transmit {
                        transport: Transport::of(t.proto),
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    };
                    self.own.learn_path(&t);
                    self.own.correct_reports(&mut t, self.last_now);
                    out.push(t);
                }
                Output::Event(e) => self.on_event(e, events),
            }
        }
    }

    /// The packets `own_egress` sealed, and what the receiver reports it read say.
    fn drain_own(&mut self, out: &mut Vec<Transmit>, events: &mut Vec<SessionEvent>) {
        self.own.drain(out);
        while let Some(r) = self.own.take_report() {
            self.rr_loss.add(r.fraction_lost, r.sent_since);
            if r.rtt.is_some() {
                self.rr_rtt = r.rtt;
            }
            let lost = Loss::Cumulative(Some(r.cumulative_lost));
            let totals = (r.nack_items, r.packets);
            let stream = (r.mid, None);
            let counts =
                (self.stream_totals).update(Flow::Egress, stream, Some(r.kind), totals, lost);
            events.extend(counts.map(SessionEvent::StreamCounts));
        }
    }

    fn on_event(&mut self, e: Event, events: &mut Vec<SessionEvent>) {
        match e {
            Event::Connected if !self.connected => {
                self.connected = true;
                events.push(SessionEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                if !self.closed && !self.ice_lost =>
            {
                self.ice_lost = true;
                events.push(SessionEvent::IceLost);
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if self.ice_lost => {
                self.ice_lost = false;
                events.push(SessionEvent::IceRestored);
            }
            Event::Closed if !self.closed => {
                self.closed = true;
                events.push(SessionEvent::Disconnected);
            }
            Event::MediaAdded(m) => events.push(SessionEvent::MediaAdded {
                mid: m.mid,
                kind: m.kind,
                track_id: self.offered.get(&m.mid).and_then(|o| o.msid_track.clone()),
            }),
            Event::RtpPacket(p) => {
                if let Some(rtp) = self.rtp_in(p) {
                    events.push(SessionEvent::Rtp(rtp));
                }
            }
            Event::KeyframeRequest(r) => events.push(SessionEvent::KeyframeRequest {
                mid: r.mid,
                rid: r.rid.map(|r| r.to_string()),
            }),
            Event::ChannelOpen(id, label) => {
                self.channels.retain(|(i, _)| *i != id);
                self.channels.push((id, label.clone()));
                events.push(SessionEvent::ChannelOpen { label });
            }
            Event::ChannelData(d) => {
                super::guard::maybe_test_panic(&d.data);
                if let Some((_, label)) = self.channels.iter().find(|(i, _)| *i == d.id) {
                    events.push(SessionEvent::ChannelData {
                        label: label.clone(),
                        binary: d.binary,
                        data: d.data,
                    });
                }
            }
            Event::ChannelClose(id) => {
                if let Some(i) = self.channels.iter().position(|(c, _)| *c == id) {
                    let (_, label) = self.channels.remove(i);
                    events.push(SessionEvent::ChannelClose { label });
                }
            }
            Event::MediaEgressStats(m) => {
                // Receiver-report loss and RTT: the fallback where TWCC gives none.
                if let Some(loss) = m.loss {
                    let sent =
                        self.stream_totals
                            .packets_since(Flow::Egress, (m.mid, m.rid), m.packets);
                    self.rr_loss.add(loss, sent);
                }
                if m.rtt.is_some() {
                    self.rr_rtt = m.rtt;
                }
                // NACKs from the subscriber, loss as its receiver reports count it.
                let kind = self.rtc.media(m.mid).map(|x| x.kind());
                let lost = Loss::Cumulative(m.remote.map(|r| r.packets_lost));
                let totals = (m.nacks, m.packets);
                let counts =
                    (self.stream_totals).update(Flow::Egress, (m.mid, m.rid), kind, totals, lost);
                events.extend(counts.map(SessionEvent::StreamCounts));
            }
            Event::MediaIngressStats(m) => {
                // NACKs we sent, and loss estimated from the receiver reports we sent.
                let kind = self.rtc.media(m.mid).map(|x| x.kind());
                let lost = Loss::Fraction(m.loss);
                let totals = (m.nacks, m.packets);
                let counts =
                    (self.stream_totals).update(Flow::Ingress, (m.mid, m.rid), kind, totals, lost);
                events.extend(counts.map(SessionEvent::StreamCounts));
            }
            Event::PeerStats(s) => {
                if let Some(pair) = &s.selected_candidate_pair {
                    // A nomination that moved while str0m had nothing of its own to
                    // send: our media follows within a second.
                    self.own.follow(super::own_egress::Path {
                        transport: Transport::of(pair.protocol),
                        source: pair.local.addr,
                        destination: pair.remote.addr,
                    });
                }
                events.push(SessionEvent::LinkStats(LinkStats {
                    egress_loss: s.egress_loss_fraction.or(self.rr_loss.take()),
                    ingress_loss: s.ingress_loss_fraction,
                    // RR round trips (DLSR) are exact; TWCC's include the feedback interval.
                    rtt: self.rr_rtt.take().or(s.rtt),
                    bytes_sent: s.peer_bytes_tx + self.own.bytes_sent(),
                }));
            }
            _ => {}
        }
    }

    /// Turns str0m's packet into ours: mid/rid from the receive stream, codec from the PT.
    fn rtp_in(&mut self, p: RtpPacket) -> Option<RtpIn> {
        let h = &p.header;
        let (mid, rid) = {
            let mut api = self.rtc.direct_api();
            let rx = api.stream_rx(&h.ssrc)?;
            (rx.mid(), rx.rid())
        };
        let pt = h.payload_type;
        let params = *self
            .rtc
            .codec_config()
            .find(|c| c.pt() == pt || c.red() == Some(pt))?;
        let red = params.pt() != pt;
        let codec = params.spec().codec;
        let is_keyframe = !red
            && match codec {
                Codec::Vp8 => format::detect_vp8_keyframe(&p.payload),
                Codec::Vp9 => format::detect_vp9_keyframe(&p.payload),
                Codec::H264 => format::detect_h264_keyframe(&p.payload),
                Codec::Av1 => format::detect_av1_keyframe(&p.payload),
                _ => false,
            };
        if is_keyframe {
            self.keyframe_asks.answered(mid, rid);
        }
        Some(RtpIn {
            mid,
            rid,
            ssrc: *h.ssrc,
            pt: PayloadType {
                pt: *pt,
                red,
                params,
            },
            codec,
            seq: *p.seq_no,
            timestamp: h.timestamp,
            marker: h.marker,
            audio_level: h.ext_vals.audio_level,
            vp9: (codec == Codec::Vp9 && !red)
                .then(|| super::vp9_descriptor::parse_vp9(&p.payload))
                .flatten(),
            payload: p.payload,
            is_keyframe,
        })
    }

    /// The payload type this PC uses for `codec` (for packets the SFU makes itself).
    pub fn payload_type_for(&self, codec: Codec) -> Option<PayloadType> {
        let params = *self.rtc.codec_config().find(|p| p.spec().codec == codec)?;
        Some(PayloadType {
            pt: *params.pt(),
            red: false,
            params,
        })
    }

    /// Writes one forwarded packet on `mid` (seq/ts already rewritten by the caller;
    /// start each track's seq below 65536) to the client. The PT is mapped to the one
    /// this PC negotiated for the same codec (`tx_routes`). We seal it ourselves
    /// (`own_egress`); it leaves at the next drain. Before DTLS is up nothing can go.
    pub fn write_rtp(
        &mut self,
        mid: Mid,
        pt: PayloadType,
        (seq, timestamp, marker): (u64, u32, bool),
        payload: Arc<[u8]>,
        now: Instant,
    ) -> Result<(), SessionError> {
        let route = self.tx_route(mid, pt)?;
        let ssrc = route.ssrc.ok_or(SessionError::UnknownMid(mid))?;
        let slot = &self.srtp_keys;
        if !self.own.ready(|| super::srtp_tap::keys_in(slot)) {
            return Err(OwnEgressError::NotReady.into());
        }
        let own = OwnRoute {
            mid,
            kind: route.kind,
            ssrc: *ssrc,
            pt: *route.local_pt,
            rtx: route.rtx.map(|(s, p)| (*s, *p)),
            clock_rate: route.clock_rate,
        };
        self.last_now = self.last_now.max(now);
        Ok(self
            .own
            .write(own, (seq, timestamp, marker), payload, now)?)
    }

    /// Whether `mid` negotiated RED for `pt`'s codec: a RED packet goes out as it came
    /// where it did; elsewhere the caller forwards its primary block (`sfu::red`).
    pub fn takes_red(&mut self, mid: Mid, pt: PayloadType) -> bool {
        self.tx_route(mid, pt.with_red(true)).is_ok()
    }

    /// Publisher PC: asks the client for a keyframe (PLI) on `mid`/`rid`. `Ok(None)`
    /// when it is too soon to ask that layer again (see `keyframe_asks`), else whether
    /// this request repeats an unanswered one. A layer the client does not send (yet)
    /// is an error, and is not recorded: the caller can ask a layer that flows.
    pub fn request_keyframe(
        &mut self,
        mid: Mid,
        rid: Option<&str>,
        now: Instant,
    ) -> Result<Option<bool>, SessionError> {
        let rid = rid.map(Rid::from);
        self.guarded(|s| {
            let mut api = s.rtc.direct_api();
            let Some(rx) = api.stream_rx_by_mid(mid, rid) else {
                return Err(SessionError::UnknownLayer {
                    mid,
                    rid: rid.map(|r| r.to_string()),
                });
            };
            let Some(repeat) = s.keyframe_asks.ask(mid, rid, now) else {
                return Ok(None);
            };
            rx.request_keyframe(KeyframeRequestKind::Pli);
            Ok(Some(repeat))
        })
    }
}

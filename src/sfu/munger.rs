//! Per-downtrack rewriting of sequence numbers and timestamps, so that what a
//! subscriber receives on its SSRC stays continuous across pauses and source (layer)
//! switches. Decisions are values; the caller applies them.

/// Sequence numbers are extended (u64, never wrap); timestamps are RTP's u32 and wrap.
#[derive(Debug, Clone, Default)]
pub struct Munger {
    state: Option<State>,
    /// Set by `switch_source`: the next packet re-anchors the offsets.
    pending_switch: Option<u32>,
    /// Sequence offsets since the current source started, as (first incoming seq it
    /// applies to, offset), oldest first: `skip` shifts the offset, and a late packet
    /// must be numbered with the offset of its time.
    history: std::collections::VecDeque<(u64, i64)>,
}

/// Offsets kept for late packets (several seconds of SVC pictures).
const HISTORY: usize = 256;

#[derive(Debug, Clone, Copy)]
struct State {
    seq_offset: i64,
    ts_offset: u32,
    /// The first incoming sequence number of the current source: older ones are stale.
    source_start: u64,
    highest_in: u64,
    last_out_seq: u64,
    last_out_ts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Munged {
    pub seq: u64,
    pub timestamp: u32,
}

/// The outgoing sequence space starts here: below 65536, as str0m wants, and away
/// from 0 so a first wrap is not immediate.
pub const FIRST_SEQ: u64 = 1000;

impl Munger {
    pub fn new() -> Self {
        Munger::default()
    }

    /// The next packet comes from a new source (another layer, or the same one after a
    /// pause). Its timestamp will follow the last one sent plus `ts_gap` (the elapsed
    /// time in RTP clock units, at least 1).
    pub fn switch_source(&mut self, ts_gap: u32) {
        self.pending_switch = Some(ts_gap.max(1));
    }

    /// Rewrites one packet, or `None` when it is stale (from before the current source
    /// started) and must be dropped.
    pub fn munge(&mut self, in_seq: u64, in_ts: u32) -> Option<Munged> {
        let state = match (self.state, self.pending_switch.take()) {
            (None, _) => {
                let s = State {
                    seq_offset: FIRST_SEQ as i64 - in_seq as i64,
                    ts_offset: 0,
                    source_start: in_seq,
                    highest_in: in_seq,
                    last_out_seq: FIRST_SEQ,
                    last_out_ts: in_ts,
                };
                self.state = Some(s);
                self.history.clear();
                self.history.push_back((in_seq, s.seq_offset));
                return Some(Munged {
                    seq: FIRST_SEQ,
                    timestamp: in_ts,
                });
            }
            (Some(s), Some(gap)) => {
                let out_seq = s.last_out_seq + 1;
                let out_ts = s.last_out_ts.wrapping_add(gap);
                let s = State {
                    seq_offset: out_seq as i64 - in_seq as i64,
                    ts_offset: out_ts.wrapping_sub(in_ts),
                    source_start: in_seq,
                    highest_in: in_seq,
                    last_out_seq: out_seq,
                    last_out_ts: out_ts,
                };
                self.state = Some(s);
                self.history.clear();
                self.history.push_back((in_seq, s.seq_offset));
                return Some(Munged {
                    seq: out_seq,
                    timestamp: out_ts,
                });
            }
            (Some(s), None) => s,
        };
        if in_seq < state.source_start {
            return None;
        }
        let offset = if in_seq > state.highest_in {
            state.seq_offset
        } else {
            // Late: the offset in effect when it was sent; older than we remember, drop.
            self.history
                .iter()
                .rev()
                .find(|(from, _)| *from <= in_seq)
                .map(|(_, o)| *o)?
        };
        let seq = (in_seq as i64 + offset) as u64;
        let timestamp = in_ts.wrapping_add(state.ts_offset);
        let s = self.state.as_mut()?;
        if in_seq > s.highest_in {
            s.highest_in = in_seq;
            s.last_out_seq = seq;
            s.last_out_ts = timestamp;
        }
        Some(Munged { seq, timestamp })
    }
}

impl Munger {
    /// `in_seq` is not forwarded although its source goes on (an SVC layer above the
    /// subscriber's): the packets after it close the gap in the outgoing numbers.
    pub fn skip(&mut self, in_seq: u64) {
        let Some(s) = self.state.as_mut() else {
            return;
        };
        if self.pending_switch.is_some() || in_seq <= s.highest_in {
            return;
        }
        s.highest_in = in_seq;
        s.seq_offset -= 1;
        match self.history.back_mut() {
            // a run of skips: one entry
            Some(last) if last.0 == in_seq => *last = (in_seq + 1, s.seq_offset),
            _ => self.history.push_back((in_seq + 1, s.seq_offset)),
        }
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_packets_leave_no_gap_and_late_ones_keep_their_numbers() {
        let mut m = Munger::new();
        let seq = |m: &mut Munger, s: u64| m.munge(s, 0).map(|x| x.seq - FIRST_SEQ);
        assert_eq!(seq(&mut m, 100), Some(0));
        assert_eq!(seq(&mut m, 101), Some(1));
        m.skip(102);
        m.skip(103);
        assert_eq!(seq(&mut m, 104), Some(2));
        // 105 lost in the network, then skips and a forward
        m.skip(106);
        assert_eq!(seq(&mut m, 107), Some(4));
        // late arrivals: each numbered with the offset of its own time
        assert_eq!(seq(&mut m, 101), Some(1));
        assert_eq!(seq(&mut m, 105), Some(3));
        // skipping what was already passed changes nothing
        m.skip(50);
        assert_eq!(seq(&mut m, 108), Some(5));
    }

    #[test]
    fn continuous_stream_keeps_spacing() {
        let mut m = Munger::new();
        let cases = [
            (5000u64, 90_000u32, Some((FIRST_SEQ, 90_000))),
            (5001, 93_000, Some((FIRST_SEQ + 1, 93_000))),
            (5003, 99_000, Some((FIRST_SEQ + 3, 99_000))),
            // late packet inside the current source: passed through, rewritten alike
            (5002, 96_000, Some((FIRST_SEQ + 2, 96_000))),
        ];
        for (seq, ts, want) in cases {
            let got = m.munge(seq, ts).map(|x| (x.seq, x.timestamp));
            assert_eq!(got, want, "in {seq}");
        }
    }

    #[test]
    fn timestamp_wraps_without_a_jump() {
        let mut m = Munger::new();
        m.munge(1, u32::MAX - 1000).unwrap();
        let next = m.munge(2, 2000).unwrap();
        assert_eq!(next.seq, FIRST_SEQ + 1);
        assert_eq!(next.timestamp, 2000);
    }

    #[test]
    fn switch_continues_numbering_and_drops_stale_packets() {
        let mut m = Munger::new();
        m.munge(100, 1000).unwrap();
        m.munge(101, 4000).unwrap();
        // a new layer whose numbers are unrelated to the old one
        m.switch_source(3000);
        let first = m.munge(70_000, 500_000).unwrap();
        assert_eq!(
            first,
            Munged {
                seq: FIRST_SEQ + 2,
                timestamp: 7000
            }
        );
        let second = m.munge(70_001, 503_000).unwrap();
        assert_eq!(
            second,
            Munged {
                seq: FIRST_SEQ + 3,
                timestamp: 10_000
            }
        );
        assert_eq!(m.munge(69_999, 497_000), None, "before the switch point");
    }

    #[test]
    fn pause_and_resume_across_timestamp_wrap() {
        let mut m = Munger::new();
        m.munge(10, u32::MAX - 10).unwrap();
        m.switch_source(100);
        let resumed = m.munge(500, 42).unwrap();
        assert_eq!(resumed.seq, FIRST_SEQ + 1);
        assert_eq!(resumed.timestamp, 89, "u32::MAX - 10 + 100 wraps to 89");
        let next = m.munge(501, 3042).unwrap();
        assert_eq!(next.timestamp, 3089);
    }
}

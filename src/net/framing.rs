//! RFC 4571 framing, as ICE over TCP uses it: each packet is preceded by its length in
//! two bytes, big-endian. Sans-IO: bytes in, whole packets out.

use thiserror::Error;

/// The largest packet accepted on a TCP connection. WebRTC packets are MTU-sized
/// (~1200 bytes); a longer frame means garbage, and the connection is closed.
pub const MAX_FRAME: usize = 4096;
/// Read room: several whole frames per read.
const BUFFER: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte cap")]
    TooLong(usize),
}

/// Collects bytes read from a stream and hands out the packets they frame.
pub struct Deframer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer {
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl Deframer {
    /// Where the next read goes; never empty (a whole frame always fits).
    pub fn space(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into `space()`.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next whole packet, `None` until more bytes arrive. Empty frames are skipped.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            let pending = &self.buf[self.start..self.end];
            let Some(head) = pending.get(..2) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
            if len > MAX_FRAME {
                return Err(FrameError::TooLong(len));
            }
            if pending.len() < 2 + len {
                return Ok(None);
            }
            let at = self.start + 2;
            self.start = at + len;
            if len > 0 {
                return Ok(Some(&self.buf[at..at + len]));
            }
        }
    }
}

/// `packet` with its length prefix, ready to write. `None` for one over the cap.
pub fn frame(packet: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(packet.len()).ok()?;
    let mut out = Vec::with_capacity(packet.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Deframer, bytes: &[u8]) {
        let space = d.space();
        space[..bytes.len()].copy_from_slice(bytes);
        d.filled(bytes.len());
    }

    #[test]
    fn frames_split_across_reads_come_out_whole() {
        let mut d = Deframer::default();
        let mut wire = frame(b"hello").unwrap();
        wire.extend(frame(b"").unwrap());
        wire.extend(frame(&[7u8; 1200]).unwrap());
        for chunk in wire.chunks(3) {
            feed(&mut d, chunk);
            while let Some(f) = d.next_frame().unwrap() {
                assert!(f == b"hello" || f == [7u8; 1200]);
            }
        }
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn a_frame_over_the_cap_is_an_error() {
        let mut d = Deframer::default();
        feed(&mut d, &[0xff, 0xff, 1, 2, 3]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(0xffff)));
    }

    #[test]
    fn the_buffer_never_overflows() {
        let mut d = Deframer::default();
        // Many partial reads of frames at the cap: space() always has room for one.
        let wire = frame(&[1u8; MAX_FRAME]).unwrap();
        for _ in 0..20 {
            for chunk in wire.chunks(1000) {
                assert!(d.space().len() >= chunk.len());
                feed(&mut d, chunk);
                while d.next_frame().unwrap().is_some() {}
            }
        }
    }
}

//! RED (RFC 2198) for Opus: publishers send audio wrapped with a redundant copy of
//! earlier frames, which survives a lost packet. Subscribers that negotiated RED get
//! the packet as it came; for the others the primary (newest) block is taken out.

/// The primary block of a RED payload; `None` if the headers are malformed or claim
/// more bytes than there are.
pub fn primary(payload: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    let mut redundant = 0usize;
    loop {
        let header = *payload.get(at)?;
        if header & 0x80 == 0 {
            // the last header: one byte, then the blocks
            at += 1;
            break;
        }
        // F=1: PT (7 bits), timestamp offset (14), block length (10)
        let b = payload.get(at + 2..at + 4)?;
        redundant += (((b[0] & 0x03) as usize) << 8) | b[1] as usize;
        at += 4;
    }
    payload.get(at + redundant..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_blocks() {
        // no redundancy: one-byte header, then the primary
        assert_eq!(primary(&[111, 1, 2, 3]), Some(&[1u8, 2, 3][..]));
        // two redundant blocks of 2 and 3 bytes (F=1, PT 111, offsets, lengths)
        let red = [
            0x80 | 111,
            0x03,
            0xC0,
            2, //
            0x80 | 111,
            0x01,
            0xE0,
            3,   //
            111, //
            9,
            9,
            8,
            8,
            8, //
            7,
            7,
            7,
            7,
        ];
        assert_eq!(primary(&red), Some(&[7u8, 7, 7, 7][..]));
        // a 10-bit length (0x1FF = 511)
        let mut long = vec![0x80 | 111, 0, 0x01, 0xFF, 111];
        long.extend(std::iter::repeat_n(5u8, 511));
        long.push(42);
        assert_eq!(primary(&long), Some(&[42u8][..]));
    }

    #[test]
    fn malformed_payloads_are_none() {
        assert_eq!(primary(&[]), None);
        assert_eq!(primary(&[0x80 | 111, 0, 0]), None, "cut header");
        assert_eq!(
            primary(&[0x80 | 111, 0, 0, 9, 111, 1]),
            None,
            "block longer than data"
        );
        assert_eq!(primary(&[0x80; 64]), None, "headers never end");
        assert_eq!(
            primary(&[111]),
            Some(&[][..]),
            "an empty primary is a valid RED packet"
        );
    }
}

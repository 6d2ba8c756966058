//! LiveKit-style identifiers: a prefix (`RM_`, `PA_`, `TR_`, `ND_`, `EV_`) and 12
//! characters from the base57 alphabet, as `livekit/protocol` `utils/guid` makes them.

use rand::Rng;

pub const ROOM_PREFIX: &str = "RM_";
pub const PARTICIPANT_PREFIX: &str = "PA_";
pub const TRACK_PREFIX: &str = "TR_";
pub const NODE_PREFIX: &str = "ND_";

const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const LEN: usize = 12;

/// A fresh random id with the given prefix.
pub fn guid(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + LEN);
    id.push_str(prefix);
    for _ in 0..LEN {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_has_prefix_and_base57_body() {
        let id = guid(ROOM_PREFIX);
        assert!(id.starts_with("RM_"));
        assert_eq!(id.len(), 15);
        assert!(id[3..].bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(guid(ROOM_PREFIX), id);
    }
}

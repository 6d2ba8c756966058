//! Which consecutive datagrams can leave as one GSO message (`UDP_SEGMENT`): a run to
//! one destination of equal-size datagrams, the last of which may be shorter. A video
//! frame forwarded to one subscriber is such a run (its packets are written one after
//! another, each the size of the publisher's), so the kernel routes and builds one
//! big packet per frame per subscriber and cuts it into datagrams at the very end
//! (in the NIC, or in software where the device cannot), instead of walking the whole
//! UDP/IP stack once per datagram.

use std::net::SocketAddr;

/// Segments per message the kernel accepts (`UDP_MAX_SEGMENTS`, 64 before Linux 6.2).
pub const MAX_SEGMENTS: usize = 64;
/// Payload bytes per message: a UDP datagram's 64 KiB less IP and UDP headers.
pub const MAX_TRAIN_BYTES: usize = 65_000;

/// How many leading `packets` (at most `max`) form the train that starts with the
/// first one: 1 when it cannot be followed.
pub fn train_len(packets: &[(SocketAddr, &[u8])], max: usize) -> usize {
    let Some((to, first)) = packets.first() else {
        return 0;
    };
    let segment = first.len();
    if segment == 0 {
        return 1;
    }
    let max = max.min(MAX_SEGMENTS);
    let mut n = 1;
    let mut bytes = segment;
    for (dest, p) in &packets[1..] {
        if n >= max || dest != to || p.is_empty() || p.len() > segment {
            break;
        }
        if bytes + p.len() > MAX_TRAIN_BYTES {
            break;
        }
        n += 1;
        bytes += p.len();
        if p.len() < segment {
            // Only the last segment may be shorter.
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn equal_sizes_to_one_destination_ride_together_and_a_shorter_one_ends_the_train() {
        let big = [0u8; 1200];
        let small = [0u8; 300];
        let p = [
            (at(1), &big[..]),
            (at(1), &big[..]),
            (at(1), &small[..]),
            (at(1), &big[..]),
        ];
        assert_eq!(train_len(&p, 100), 3);
        assert_eq!(train_len(&p[3..], 100), 1);
        assert_eq!(train_len(&p, 2), 2, "bounded by the caller's room");
        assert_eq!(train_len(&[], 100), 0);
    }

    #[test]
    fn another_destination_or_a_bigger_packet_starts_a_new_train() {
        let big = [0u8; 1200];
        let bigger = [0u8; 1201];
        let p = [(at(1), &big[..]), (at(2), &big[..])];
        assert_eq!(train_len(&p, 100), 1);
        let p = [(at(1), &big[..]), (at(1), &bigger[..])];
        assert_eq!(train_len(&p, 100), 1);
        let empty: &[u8] = &[];
        assert_eq!(train_len(&[(at(1), empty), (at(1), empty)], 100), 1);
    }

    #[test]
    fn trains_stay_within_the_kernel_limits() {
        let big = [0u8; 1200];
        let p = vec![(at(1), &big[..]); 200];
        assert_eq!(train_len(&p, 1000), MAX_TRAIN_BYTES / 1200);
        let tiny = [0u8; 100];
        let p = vec![(at(1), &tiny[..]); 200];
        assert_eq!(train_len(&p, 1000), MAX_SEGMENTS);
    }
}

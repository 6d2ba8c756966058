//! The floor the server's per-packet cost is compared with: one `sendto` of a 1200-byte
//! datagram over loopback, in CPU time of the sending thread (the kernel's loopback
//! delivery included), measured in the same run as the load.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

/// Datagram size of the floor, a typical video packet.
pub const FLOOR_BYTES: usize = 1200;

/// CPU time of the calling thread (zero if the clock cannot be read).
fn thread_cpu() -> Duration {
    crate::clock::cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or_default()
}

/// ns of thread CPU per `sendto` of FLOOR_BYTES to a bound loopback socket that
/// nobody reads (the kernel drops what overflows its buffer, as it would deliver it).
/// The median of `rounds` rounds of `per_round` sends.
pub fn sendto_ns(rounds: usize, per_round: usize) -> std::io::Result<f64> {
    let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let to = rx.local_addr()?;
    let buf = [0x5au8; FLOOR_BYTES];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let start = thread_cpu();
        for _ in 0..per_round.max(1) {
            tx.send_to(&buf, to)?;
        }
        let spent = thread_cpu().saturating_sub(start);
        samples.push(spent.as_nanos() as f64 / per_round.max(1) as f64);
        // Let the receive buffer drain into the void between rounds.
        drop(rx.set_nonblocking(true));
        let mut sink = [0u8; FLOOR_BYTES];
        while rx.recv(&mut sink).is_ok() {}
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

//! What the TURN thread counts, read by the control thread for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a TURN request or relayed datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A username that does not verify (unknown key, malformed, forged).
    BadCredentials,
    /// A username whose expiry has passed.
    Expired,
    /// Over `turn.per_user_relay_allocation_limit`, or the relay port range is full.
    Quota,
    /// Data to or from a peer the deny list forbids.
    DeniedPeer,
    /// A TLS/TCP connection that broke the protocol, failed its handshake or stopped
    /// reading.
    BadStream,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::BadCredentials,
        Refusal::Expired,
        Refusal::Quota,
        Refusal::DeniedPeer,
        Refusal::BadStream,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::BadCredentials => "bad_credentials",
            Refusal::Expired => "expired",
            Refusal::Quota => "quota",
            Refusal::DeniedPeer => "denied_peer",
            Refusal::BadStream => "bad_stream",
        }
    }
}

#[derive(Debug, Default)]
pub struct TurnStats {
    pub allocations: AtomicU64,
    /// Datagrams relayed client → peer and peer → client.
    pub to_peer: AtomicU64,
    pub to_client: AtomicU64,
    refused: [AtomicU64; 5],
}

impl TurnStats {
    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

//! The SRTP master keys of a session, taken from its DTLS handshake through str0m's
//! public crypto provider API: the groundwork of an own egress (issue 9), which would
//! encrypt forwarded packets itself instead of going through str0m's per-packet path.
//!
//! str0m builds each `Rtc`'s DTLS instance from `CryptoProvider::dtls_provider` while
//! the `Rtc` is built. Ours wraps the default provider; each instance it makes passes
//! everything through to the default one and copies the keying material and profile
//! that the handshake exports (RFC 5764 §4.2) into the slot of the session being built.
//! The slot reaches the instance through a thread-local set around `RtcConfig::build`:
//! the provider is one `'static` value for every session, and a shard builds its
//! sessions on its own thread.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
    SrtpProfile,
};
use str0m::crypto::{CryptoError, CryptoProvider};
use str0m::{Rtc, RtcConfig};

/// What a DTLS-SRTP handshake exported: both directions' master keys and salts.
#[derive(Clone)]
pub struct SrtpKeys {
    /// client write key, server write key, client write salt, server write salt.
    material: Vec<u8>,
    pub profile: SrtpProfile,
    /// Whether this side was the DTLS client: its packets use the client's key.
    pub dtls_client: bool,
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key bytes.
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .field("dtls_client", &self.dtls_client)
            .finish()
    }
}

impl SrtpKeys {
    /// Keys from elsewhere (benches, tests): `material` laid out as RFC 5764 §4.2 says.
    pub fn new(material: Vec<u8>, profile: SrtpProfile, dtls_client: bool) -> Self {
        SrtpKeys {
            material,
            profile,
            dtls_client,
        }
    }

    /// The master key and salt this side encrypts with, for a profile whose master
    /// key is `key_len` bytes and salt `salt_len`; `None` if the material is not
    /// that long.
    pub fn local_master(&self, key_len: usize, salt_len: usize) -> Option<(&[u8], &[u8])> {
        self.master(self.dtls_client, key_len, salt_len)
    }

    /// The master key and salt the peer encrypts with (what we decrypt).
    pub fn remote_master(&self, key_len: usize, salt_len: usize) -> Option<(&[u8], &[u8])> {
        self.master(!self.dtls_client, key_len, salt_len)
    }

    fn master(&self, client: bool, key_len: usize, salt_len: usize) -> Option<(&[u8], &[u8])> {
        if self.material.len() != 2 * (key_len + salt_len) {
            return None;
        }
        let (key_at, salt_at) = if client {
            (0, 2 * key_len)
        } else {
            (key_len, 2 * key_len + salt_len)
        };
        Some((
            &self.material[key_at..key_at + key_len],
            &self.material[salt_at..salt_at + salt_len],
        ))
    }
}

/// Where a session's keys land once its handshake has exported them.
pub type KeySlot = Arc<Mutex<Option<SrtpKeys>>>;

/// The keys in `slot`; `None` before the handshake has exported them.
pub fn keys_in(slot: &KeySlot) -> Option<SrtpKeys> {
    slot.lock().ok().and_then(|k| k.clone())
}

thread_local! {
    /// The slot of the session whose `Rtc` this thread is building.
    static BUILDING: RefCell<Option<KeySlot>> = const { RefCell::new(None) };
}

/// Builds `config`'s `Rtc` with the tapping provider. The slot stays empty until the
/// handshake completes (and for good if str0m made no DTLS instance while building).
pub fn build(config: RtcConfig, now: Instant) -> (Rtc, KeySlot) {
    let slot = KeySlot::default();
    let config = config.set_crypto_provider(Arc::new(tapping_provider()));
    BUILDING.with(|b| *b.borrow_mut() = Some(slot.clone()));
    let rtc = config.build(now);
    BUILDING.with(|b| b.borrow_mut().take());
    (rtc, slot)
}

/// The default provider with its DTLS factory wrapped.
fn tapping_provider() -> CryptoProvider {
    CryptoProvider {
        dtls_provider: &TAP,
        ..str0m::crypto::from_feature_flags()
    }
}

static TAP: Tap = Tap;

#[derive(Debug)]
struct Tap;

impl DtlsProvider for Tap {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let inner = str0m::crypto::from_feature_flags().dtls_provider.new_dtls(
            cert,
            now,
            dtls_version,
            mtu,
        )?;
        let slot = BUILDING.with(|b| b.borrow_mut().take());
        Ok(Box::new(Tapped { inner, slot }))
    }
}

/// A DTLS instance that passes everything through and keeps a copy of the keys.
#[derive(Debug)]
struct Tapped {
    inner: Box<dyn DtlsInstance>,
    slot: Option<KeySlot>,
}

impl DtlsInstance for Tapped {
    fn set_active(&mut self, active: bool) {
        self.inner.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.inner.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let out = self.inner.poll_output(buf);
        if let (DtlsOutput::KeyingMaterial(material, profile), Some(slot)) = (&out, &self.slot) {
            let keys = SrtpKeys {
                material: material.to_vec(),
                profile: *profile,
                dtls_client: self.inner.is_active(),
            };
            if let Ok(mut s) = slot.lock() {
                *s = Some(keys);
            }
        }
        out
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.inner.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.inner.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.inner.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.inner.close()
    }
}

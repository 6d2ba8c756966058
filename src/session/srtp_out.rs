//! SRTP for RTP we encrypt ourselves (RFC 7714 AEAD-AES-GCM, the profiles browsers
//! and str0m's DTLS agree on), from the master keys `srtp_tap` takes out of the
//! handshake: the session keys are derived as in RFC 3711 §4.3 and each packet is
//! sealed with the header as associated data, as str0m's own SRTP does, so a peer's
//! SRTP context accepts the two alike. The groundwork of an own egress (issue 9).
//! AES-CM with HMAC-SHA1 (the third profile) is not done here: neither side prefers it.

use str0m::crypto::dtls::SrtpProfile;
use str0m::crypto::{AeadAes128GcmCipher, AeadAes256GcmCipher, SrtpProvider};

use super::srtp_tap::SrtpKeys;

/// RFC 3711 key derivation labels.
const LABEL_RTP_KEY: u8 = 0;
const LABEL_RTP_SALT: u8 = 2;
/// The AEAD salt and IV length (RFC 7714 §8.1).
pub(super) const SALT_LEN: usize = 12;
/// The GCM authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;
const RTP_HEADER_MIN: usize = 12;

/// Keys our own SRTP cannot use.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("SRTP profile {0:?} is not done by our own SRTP")]
    Unsupported(SrtpProfile),
    #[error("keying material of the wrong length for {0:?}")]
    Material(SrtpProfile),
}

#[derive(Debug, thiserror::Error)]
pub enum SrtpOutError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("an RTP header is at least 12 bytes, not {0}")]
    ShortHeader(usize),
    #[error("AES-GCM: {0}")]
    Seal(String),
}

/// An AEAD-AES-GCM cipher of either key size, sealing or opening.
pub(super) enum Gcm {
    Aes128(Box<dyn AeadAes128GcmCipher>),
    Aes256(Box<dyn AeadAes256GcmCipher>),
}

impl Gcm {
    /// Encrypts `plain` into `out` (its length plus the tag), authenticating `aad`.
    pub(super) fn seal(
        &mut self,
        iv: &[u8; SALT_LEN],
        aad: &[u8],
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<(), String> {
        let sealed = match self {
            Gcm::Aes128(c) => c.encrypt(iv, aad, plain, out),
            Gcm::Aes256(c) => c.encrypt(iv, aad, plain, out),
        };
        sealed.map_err(|e| e.to_string())
    }

    /// Decrypts `sealed` (ciphertext and tag) into `out`; the plain length, or `None`
    /// when it does not authenticate.
    pub(super) fn open(
        &mut self,
        iv: &[u8; SALT_LEN],
        aad: &[u8],
        sealed: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let opened = match self {
            Gcm::Aes128(c) => c.decrypt(iv, &[aad], sealed, out),
            Gcm::Aes256(c) => c.decrypt(iv, &[aad], sealed, out),
        };
        opened.ok()
    }
}

/// One direction's SRTP encryption: what this side sends on one session.
pub struct SrtpSender {
    salt: [u8; SALT_LEN],
    cipher: Gcm,
}

impl std::fmt::Debug for SrtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpSender")
    }
}

impl SrtpSender {
    /// The sender for this side's direction of `keys`.
    pub fn new(keys: &SrtpKeys) -> Result<SrtpSender, SrtpOutError> {
        let (cipher, salt) = session_cipher(keys, Direction::Local, LABEL_RTP_KEY, LABEL_RTP_SALT)?;
        Ok(SrtpSender { salt, cipher })
    }

    /// Appends one SRTP packet to `out`: `header` (the RTP header with its extensions,
    /// sent in the clear and authenticated), then `payload` encrypted, then the tag.
    /// `roc` is the stream's rollover counter (how many times its sequence number
    /// wrapped). On error `out` is as it was.
    pub fn protect(
        &mut self,
        header: &[u8],
        payload: &[u8],
        roc: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), SrtpOutError> {
        if header.len() < RTP_HEADER_MIN {
            return Err(SrtpOutError::ShortHeader(header.len()));
        }
        let seq = [header[2], header[3]];
        let ssrc = [header[8], header[9], header[10], header[11]];
        let iv = self.iv(ssrc, roc, seq);
        let start = out.len();
        out.extend_from_slice(header);
        out.resize(start + header.len() + payload.len() + TAG_LEN, 0);
        let (head, body) = out[start..].split_at_mut(header.len());
        self.cipher.seal(&iv, head, payload, body).map_err(|e| {
            out.truncate(start);
            SrtpOutError::Seal(e)
        })
    }

    /// RFC 7714 §8.1: the session salt XOR (0, 0, SSRC, ROC, SEQ).
    fn iv(&self, ssrc: [u8; 4], roc: u32, seq: [u8; 2]) -> [u8; SALT_LEN] {
        let mut iv = self.salt;
        let roc = roc.to_be_bytes();
        let fields = ssrc.iter().chain(&roc).chain(&seq);
        for (b, x) in iv[2..].iter_mut().zip(fields) {
            *b ^= x;
        }
        iv
    }
}

/// Whose packets a derived key is for.
#[derive(Clone, Copy)]
pub(super) enum Direction {
    /// What this side sends.
    Local,
    /// What the peer sends.
    Remote,
}

/// The cipher (sealing for `Local`, opening for `Remote`) and salt for one direction
/// of `keys`, derived with `key_label` and `salt_label` (RTP's or RTCP's).
pub(super) fn session_cipher(
    keys: &SrtpKeys,
    direction: Direction,
    key_label: u8,
    salt_label: u8,
) -> Result<(Gcm, [u8; SALT_LEN]), KeyError> {
    let provider = str0m::crypto::from_feature_flags().srtp_provider;
    let key_len = match keys.profile {
        SrtpProfile::AEAD_AES_128_GCM => 16,
        SrtpProfile::AEAD_AES_256_GCM => 32,
        other => return Err(KeyError::Unsupported(other)),
    };
    let (master, master_salt, seal) = match direction {
        Direction::Local => keys
            .local_master(key_len, SALT_LEN)
            .map(|(k, s)| (k, s, true)),
        Direction::Remote => keys
            .remote_master(key_len, SALT_LEN)
            .map(|(k, s)| (k, s, false)),
    }
    .ok_or(KeyError::Material(keys.profile))?;
    let mut salt = [0u8; SALT_LEN];
    derive(provider, master, master_salt, salt_label, &mut salt);
    let cipher = if key_len == 16 {
        let mut k = [0u8; 16];
        derive(provider, master, master_salt, key_label, &mut k);
        Gcm::Aes128(provider.aead_aes_128_gcm().create_cipher(k, seal))
    } else {
        let mut k = [0u8; 32];
        derive(provider, master, master_salt, key_label, &mut k);
        Gcm::Aes256(provider.aead_aes_256_gcm().create_cipher(k, seal))
    };
    Ok((cipher, salt))
}

/// RFC 3711 §4.3.1 with the key derivation rate 0: AES in counter mode under the
/// master key, the block being the master salt (left-aligned) with the label XORed
/// into its eighth byte and the block counter in the last two.
pub(super) fn derive(
    provider: &dyn SrtpProvider,
    master: &[u8],
    salt: &[u8],
    label: u8,
    out: &mut [u8],
) {
    let mut block = [0u8; 16];
    block[..salt.len().min(14)].copy_from_slice(&salt[..salt.len().min(14)]);
    block[7] ^= label;
    for (round, chunk) in out.chunks_mut(16).enumerate() {
        block[14..].copy_from_slice(&(round as u16).to_be_bytes());
        // The provider's ECB may write a padding block after the first.
        let mut cipher = [0u8; 32];
        if master.len() == 16 {
            provider.srtp_aes_128_ecb_round(master, &block, &mut cipher);
        } else {
            provider.srtp_aes_256_ecb_round(master, &block, &mut cipher);
        }
        chunk.copy_from_slice(&cipher[..chunk.len()]);
    }
}

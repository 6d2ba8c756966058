//! `/rtc/v1`'s `join_request` query parameter: URL-safe base64 (padded or not) of a
//! `WrappedJoinRequest`, whose `JoinRequest` may be gzipped. Both sizes are capped, and
//! gzip is read through a bounded reader, so a small bomb cannot make a large buffer.

use std::io::Read;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use livekit_protocol as lk;
use prost::Message as _;

/// The longest `join_request` parameter taken (the HTTP head, 64 KiB, holds it).
pub const MAX_ENCODED: usize = 48 * 1024;
/// The largest JoinRequest taken after decompression: an offer with many sections is
/// tens of KiB; SDP over 256 KiB is refused later anyway.
pub const MAX_DECODED: usize = 512 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinRequestError {
    #[error("missing join_request")]
    Missing,
    #[error("join_request is {0} bytes, over the {MAX_ENCODED}-byte limit")]
    TooLong(usize),
    #[error("join_request is not base64: {0}")]
    Base64(String),
    #[error("join_request is not a WrappedJoinRequest: {0}")]
    Wrapper(String),
    #[error("join_request: unknown compression {0}")]
    Compression(i32),
    #[error("join_request: bad gzip: {0}")]
    Gzip(String),
    #[error("join_request decompresses past the {MAX_DECODED}-byte limit")]
    TooLarge,
    #[error("join_request does not hold a JoinRequest: {0}")]
    Request(String),
}

const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn decode(param: Option<&str>) -> Result<lk::JoinRequest, JoinRequestError> {
    let param = param.ok_or(JoinRequestError::Missing)?.trim();
    if param.is_empty() {
        return Err(JoinRequestError::Missing);
    }
    if param.len() > MAX_ENCODED {
        return Err(JoinRequestError::TooLong(param.len()));
    }
    // Some encoders keep the standard alphabet; '+' may also arrive as a space.
    let normalized: String = param
        .chars()
        .map(|c| match c {
            '+' | ' ' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let wrapped = URL_SAFE_ANY_PADDING
        .decode(normalized.as_bytes())
        .map_err(|e| JoinRequestError::Base64(e.to_string()))?;
    let wrapped = lk::WrappedJoinRequest::decode(wrapped.as_slice())
        .map_err(|e| JoinRequestError::Wrapper(e.to_string()))?;
    use lk::wrapped_join_request::Compression;
    let bytes = match Compression::try_from(wrapped.compression) {
        Ok(Compression::None) => wrapped.join_request,
        Ok(Compression::Gzip) => gunzip(&wrapped.join_request)?,
        Err(_) => return Err(JoinRequestError::Compression(wrapped.compression)),
    };
    if bytes.len() > MAX_DECODED {
        return Err(JoinRequestError::TooLarge);
    }
    lk::JoinRequest::decode(bytes.as_slice()).map_err(|e| JoinRequestError::Request(e.to_string()))
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, JoinRequestError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_DECODED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| JoinRequestError::Gzip(e.to_string()))?;
    if out.len() > MAX_DECODED {
        return Err(JoinRequestError::TooLarge);
    }
    Ok(out)
}

/// What a client sends (the tests' way of making one).
#[cfg(test)]
fn encode(request: &lk::JoinRequest, gzip: bool) -> String {
    use lk::wrapped_join_request::Compression;
    let raw = request.encode_to_vec();
    let (join_request, compression) = if gzip {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(&raw);
        (enc.finish().unwrap_or_default(), Compression::Gzip)
    } else {
        (raw, Compression::None)
    };
    let wrapped = lk::WrappedJoinRequest {
        compression: compression as i32,
        join_request,
    };
    base64::engine::general_purpose::URL_SAFE.encode(wrapped.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> lk::JoinRequest {
        lk::JoinRequest {
            metadata: "m".into(),
            publisher_offer: Some(lk::SessionDescription {
                r#type: "offer".into(),
                sdp: "v=0\r\n".repeat(100),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn plain_and_gzipped_padded_or_not_decode() {
        for gzip in [false, true] {
            let padded = encode(&request(), gzip);
            assert_eq!(decode(Some(&padded)), Ok(request()));
            let bare = padded.trim_end_matches('=');
            assert_eq!(decode(Some(bare)), Ok(request()));
            let standard = padded.replace('-', "+").replace('_', "/");
            assert_eq!(decode(Some(&standard)), Ok(request()));
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(decode(None), Err(JoinRequestError::Missing));
        assert_eq!(decode(Some("")), Err(JoinRequestError::Missing));
        assert!(matches!(
            decode(Some("@@@not base64")),
            Err(JoinRequestError::Base64(_))
        ));
        let not_wrapped = base64::engine::general_purpose::URL_SAFE.encode([0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(Some(&not_wrapped)),
            Err(JoinRequestError::Wrapper(_))
        ));
        let long = "A".repeat(MAX_ENCODED + 1);
        assert!(matches!(
            decode(Some(&long)),
            Err(JoinRequestError::TooLong(_))
        ));
        let bad_gzip = lk::WrappedJoinRequest {
            compression: lk::wrapped_join_request::Compression::Gzip as i32,
            join_request: vec![1, 2, 3],
        };
        let param = base64::engine::general_purpose::URL_SAFE.encode(bad_gzip.encode_to_vec());
        assert!(matches!(
            decode(Some(&param)),
            Err(JoinRequestError::Gzip(_))
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 40 * 1024, "{} bytes", bomb.len());
        let wrapped = lk::WrappedJoinRequest {
            compression: lk::wrapped_join_request::Compression::Gzip as i32,
            join_request: bomb,
        };
        let param = base64::engine::general_purpose::URL_SAFE.encode(wrapped.encode_to_vec());
        assert_eq!(decode(Some(&param)), Err(JoinRequestError::TooLarge));
    }
}

//! What we read from a client's offer before str0m consumes it: `Event::MediaAdded` only
//! fires once DTLS is up, but signalling must map m-lines to announced tracks right away.

use str0m::change::SdpOffer;
use str0m::media::{MediaKind, Mid};

use super::SessionError;

/// Offers larger than this are refused before parsing (browsers send a few KiB).
const MAX_SDP_LEN: usize = 256 * 1024;

/// One audio or video m-line of a client's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    pub mid: Mid,
    pub kind: MediaKind,
    /// `a=msid:<stream> <track>`: LiveKit JS puts the MediaStreamTrack id (the
    /// AddTrackRequest `cid`) in the track part.
    pub msid_stream: Option<String>,
    pub msid_track: Option<String>,
    /// Simulcast layers (`a=rid:`), e.g. `q`, `h`, `f`.
    pub rids: Vec<String>,
    /// `sendonly`, `recvonly`, `sendrecv` or `inactive` (the client's view).
    pub direction: String,
    /// Port 0: the m-line was stopped (or rejected) and may be recycled.
    pub disabled: bool,
}

/// The SDP with CRLF line endings and without blank lines. str0m's parser silently drops
/// everything after a blank line; LF-only input is accepted too.
pub fn normalize(sdp: &str) -> Result<String, SessionError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(SessionError::Sdp(format!(
            "{} bytes is too large",
            sdp.len()
        )));
    }
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !out.starts_with("v=") {
        return Err(SessionError::Sdp("does not start with v=".into()));
    }
    Ok(out)
}

/// Parses an offer (normalized first).
pub fn parse_offer(sdp: &str) -> Result<SdpOffer, SessionError> {
    let sdp = normalize(sdp)?;
    SdpOffer::from_sdp_string(&sdp).map_err(|e| SessionError::Sdp(e.to_string()))
}

/// The audio and video m-lines of an offer, in SDP order.
pub fn offered_media(offer: &SdpOffer) -> Vec<OfferedMedia> {
    offer
        .media_lines
        .iter()
        .filter_map(|line| {
            // `typ` is str0m's crate-private MediaType; its Display is the m= token.
            let kind = match line.typ.to_string().as_str() {
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                _ => return None,
            };
            // The parser already refused m-lines without exactly one a=mid, so `mid()`
            // (which panics otherwise) is safe here.
            let msid = line.msid();
            Some(OfferedMedia {
                mid: line.mid(),
                kind,
                msid_stream: msid.as_ref().map(|m| m.stream_id.clone()),
                msid_track: msid.map(|m| m.track_id),
                rids: line.rids().iter().map(|r| r.to_string()).collect(),
                direction: line.direction().to_string(),
                disabled: line.disabled,
            })
        })
        .collect()
}

/// Marks as disabled the m-lines that str0m rejected in its answer (port 0: no codec
/// in common), so that no track is published for media that can never arrive.
pub fn mark_rejected(media: &mut [OfferedMedia], rtc: &str0m::Rtc) {
    for m in media {
        m.disabled |= rtc.media(m.mid).is_none_or(|answered| answered.disabled());
    }
}

/// The mid of the first m-line (the BUNDLE tag), which trickled candidates refer to.
pub fn first_mid(offer: &SdpOffer) -> Option<Mid> {
    offer.media_lines.first().map(|l| l.mid())
}

/// The first `a=mid:` value of an SDP we produced.
pub fn first_mid_in(sdp: &str) -> Option<Mid> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .map(|m| Mid::from(m.trim()))
}

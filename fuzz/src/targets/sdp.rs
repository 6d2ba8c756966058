//! SDP and candidate text of ours: what the publisher offer is read for before str0m
//! takes it, the answer rewriting that moves a wanted codec first, and trickled
//! candidates.

use std::net::SocketAddr;

use corelay::session::codec_order::{first_video_codec, prefer_codecs};
use corelay::session::parsers::{
    first_mid, first_mid_in, offered_media, pairable, parse_offer, parse_trickle, Trickled,
};
use corelay::session::Codec;

pub fn offer(data: &[u8]) {
    let Some(sdp) = super::text(data) else {
        return;
    };
    let _ = first_mid_in(sdp);
    let _ = first_video_codec(sdp, "0");
    let _ = prefer_codecs(
        sdp,
        &[
            ("0".to_string(), Codec::Vp9),
            ("1".to_string(), Codec::Opus),
        ],
    );
    if let Ok(offer) = parse_offer(sdp) {
        let media = offered_media(&offer);
        let _ = first_mid(&offer);
        for m in &media {
            let _ = first_video_codec(sdp, &m.mid.to_string());
        }
    }
}

pub fn candidate(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    if let Ok(Trickled::Candidate(c)) = parse_trickle(text) {
        let local: SocketAddr = "10.0.0.2:7882".parse().expect("a socket address");
        let ours = str0m_host(local);
        let _ = pairable(&ours, &c);
    }
}

/// Our one host candidate, parsed the way a remote one is.
fn str0m_host(addr: SocketAddr) -> Vec<corelay::session::parsers::Candidate> {
    let line = format!(
        "candidate:1 1 udp 2130706431 {} {} typ host",
        addr.ip(),
        addr.port()
    );
    match parse_trickle(&line) {
        Ok(Trickled::Candidate(c)) => vec![c],
        _ => Vec::new(),
    }
}

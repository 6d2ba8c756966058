//! Trickle ICE in LiveKit's JSON shapes. Clients send `RTCIceCandidateInit` JSON; the LiveKit
//! Rust SDK needs a string `sdpMid` and a number `sdpMLineIndex` in ours (str0m's serde
//! writes `"sdpMid":null`).

use str0m::Candidate;

use super::SessionError;

/// What a trickled candidate turned out to be.
#[derive(Debug)]
pub enum Trickled {
    Candidate(Candidate),
    /// End-of-candidates (empty string) or an mDNS `.local` host: nothing to add.
    Ignored,
}

/// Parses `{"candidate":"candidate:…","sdpMid":"0","sdpMLineIndex":0}` (sdpMid and
/// sdpMLineIndex may be missing or null: with BUNDLE there is one transport), or a bare
/// `candidate:…` / `a=candidate:…` line.
pub fn parse_trickle(input: &str) -> Result<Trickled, SessionError> {
    let input = input.trim();
    let line = if input.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(input).map_err(|e| SessionError::Candidate(e.to_string()))?;
        match v.get("candidate") {
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(serde_json::Value::Null) | None => {
                return Err(SessionError::Candidate("no candidate field".into()))
            }
            Some(_) => return Err(SessionError::Candidate("candidate is not a string".into())),
        }
    } else {
        input.to_string()
    };
    let line = line.strip_prefix("a=").unwrap_or(&line);
    if line.is_empty() {
        return Ok(Trickled::Ignored);
    }
    if !line.starts_with("candidate:") {
        return Err(SessionError::Candidate("expected candidate:".into()));
    }
    // candidate:<foundation> <component> <proto> <prio> <address> <port> typ <type> …
    let address = line.split_whitespace().nth(4).unwrap_or_default();
    if address.to_ascii_lowercase().ends_with(".local") {
        return Ok(Trickled::Ignored);
    }
    Candidate::from_sdp_string(line)
        .map(Trickled::Candidate)
        .map_err(|e| SessionError::Candidate(e.to_string()))
}

/// One of our candidates as the JSON LiveKit SDKs accept.
pub fn to_trickle_json(c: &Candidate, sdp_mid: &str) -> String {
    serde_json::json!({
        "candidate": c.to_sdp_string(),
        "sdpMid": sdp_mid,
        "sdpMLineIndex": 0,
    })
    .to_string()
}

/// Whether a remote candidate can pair with one of `local`: same transport (UDP, or
/// TCP when we offer a passive TCP candidate) and same address family. An unpairable
/// candidate is
/// dropped before str0m sees it: after an ICE restart str0m's agent has no pairs yet,
/// and the first candidate it gets being unpairable (a TCP or IPv6 one, in whatever
/// order the client trickles them) made it declare the connection lost.
pub fn pairable(local: &[Candidate], remote: &Candidate) -> bool {
    local
        .iter()
        .any(|l| l.proto() == remote.proto() && l.addr().is_ipv4() == remote.addr().is_ipv4())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Candidate {
        match parse_trickle(line) {
            Ok(Trickled::Candidate(c)) => c,
            _ => panic!("not a candidate: {line}"),
        }
    }

    #[test]
    fn only_udp_candidates_of_a_family_we_have_pair() {
        let local = [Candidate::host("10.0.0.2:7882".parse().unwrap(), "udp").unwrap()];
        let udp4 = parsed("candidate:1 1 udp 2122260223 192.0.2.2 55791 typ host");
        let tcp4 = parsed("candidate:2 1 tcp 1518214911 192.0.2.2 9 typ host tcptype active");
        let udp6 = parsed("candidate:3 1 udp 2122265343 fd00::2 34288 typ host");
        assert!(pairable(&local, &udp4));
        assert!(!pairable(&local, &tcp4), "no ICE-TCP here");
        assert!(!pairable(&local, &udp6), "no IPv6 socket here");
        let both = [
            local[0].clone(),
            Candidate::host("[fd00::1]:7882".parse().unwrap(), "udp").unwrap(),
        ];
        assert!(pairable(&both, &udp6));
        let with_tcp = [
            local[0].clone(),
            Candidate::builder()
                .tcp()
                .host("10.0.0.2:7881".parse().unwrap())
                .tcptype(str0m::net::TcpType::Passive)
                .build()
                .unwrap(),
        ];
        assert!(pairable(&with_tcp, &tcp4), "ICE-TCP once we listen");
    }
}

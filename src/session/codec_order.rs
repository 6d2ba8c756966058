//! Puts the codec a publisher asked for first in our answer. livekit-client offers
//! every codec in the browser's default order (VP8 first) and relies on the server's
//! answer to choose: it names the wanted codec in AddTrackRequest.simulcast_codecs
//! (`videoCodec: 'vp9'`), and browsers send the first codec of the answer. str0m
//! answers in its own order, so the wanted codec's payload types are moved to the
//! front of that m-line; every codec stays negotiated. Audio works the same way:
//! RED first, as LiveKit prefers it, or plain Opus first for a track published with
//! `disable_red` (E2EE: the RED wrapper would be encrypted with the frame).

use str0m::format::Codec;

/// `answer` with, in each listed m-line (by mid), the payload types of its wanted
/// codec first. Lines are joined with CRLF, as SDP wants.
pub fn prefer_codecs(answer: &str, wanted: &[(String, Codec)]) -> String {
    if wanted.is_empty() {
        return answer.to_string();
    }
    let sections = split_sections(answer);
    let mut out = String::with_capacity(answer.len() + 8);
    for section in sections {
        let want = section_mid(&section)
            .and_then(|mid| wanted.iter().find(|(m, _)| m == mid))
            .map(|(_, c)| *c);
        for (i, line) in section.iter().enumerate() {
            match (i, want, line.strip_prefix("m=")) {
                (0, Some(codec), Some(m)) => {
                    let mut fields: Vec<&str> = m.split_whitespace().collect();
                    if fields.len() > 3 {
                        let first = |pt: &&str| codec_of(&section, pt) != Some(codec);
                        fields[3..].sort_by_key(first);
                    }
                    out.push_str("m=");
                    out.push_str(&fields.join(" "));
                }
                _ => out.push_str(line),
            }
            out.push_str("\r\n");
        }
    }
    out
}

/// The first video codec of the m-line with `mid` (what the client will send).
pub fn first_video_codec(sdp: &str, mid: &str) -> Option<Codec> {
    first_codec(sdp, mid).filter(|c| c.is_video())
}

/// The first codec of the m-line with `mid` (audio: Opus or RED).
fn first_codec(sdp: &str, mid: &str) -> Option<Codec> {
    let sections = split_sections(sdp);
    let section = sections.iter().find(|s| section_mid(s) == Some(mid))?;
    let first_pt = section[0].split_whitespace().nth(3)?;
    codec_of(section, first_pt)
}

/// The session part, then one group of lines per m-line.
fn split_sections(sdp: &str) -> Vec<Vec<&str>> {
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push(line);
        }
    }
    sections.retain(|s| !s.is_empty());
    sections
}

fn section_mid<'a>(section: &[&'a str]) -> Option<&'a str> {
    if !section.first()?.starts_with("m=") {
        return None;
    }
    section.iter().find_map(|l| l.strip_prefix("a=mid:"))
}

fn codec_of(section: &[&str], pt: &str) -> Option<Codec> {
    let prefix = format!("a=rtpmap:{pt} ");
    let rtpmap = section
        .iter()
        .find_map(|l| l.strip_prefix(prefix.as_str()))?;
    let codec = Codec::from(rtpmap.split('/').next()?);
    (codec != Codec::Unknown).then_some(codec)
}

/// A video codec from its SDP or mime name (`VP9`, `video/vp9`), by str0m's names.
pub fn codec_named(name: &str) -> Option<Codec> {
    let codec = Codec::from(name.rsplit('/').next().unwrap_or(name));
    codec.is_video().then_some(codec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 45\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\na=rtpmap:98 VP9/90000\r\na=rtpmap:99 rtx/90000\r\n\
        a=rtpmap:45 AV1/90000\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 45\r\na=mid:2\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:45 AV1/90000\r\n";

    #[test]
    fn the_wanted_codec_goes_first_on_its_m_line_only() {
        let wanted = [("1".to_string(), Codec::Vp9)];
        let fixed = prefer_codecs(ANSWER, &wanted);
        assert!(
            fixed.contains("m=video 9 UDP/TLS/RTP/SAVPF 98 96 97 99 45\r\na=mid:1"),
            "{fixed}"
        );
        assert!(
            fixed.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 45\r\na=mid:2"),
            "{fixed}"
        );
        assert_eq!(fixed.lines().count(), ANSWER.lines().count());
        assert_eq!(first_video_codec(&fixed, "1"), Some(Codec::Vp9));
        assert_eq!(first_video_codec(&fixed, "2"), Some(Codec::Vp8));
        let av1 = prefer_codecs(ANSWER, &[("2".to_string(), Codec::Av1)]);
        assert_eq!(first_video_codec(&av1, "2"), Some(Codec::Av1));
        assert_eq!(first_video_codec(ANSWER, "0"), None);
    }

    const AUDIO: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\na=mid:0\r\n\
        a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn opus_or_red_first_on_an_audio_line() {
        assert_eq!(first_codec(AUDIO, "0"), Some(Codec::Red));
        let opus = prefer_codecs(AUDIO, &[("0".to_string(), Codec::Opus)]);
        assert!(
            opus.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n"),
            "{opus}"
        );
        assert_eq!(first_codec(&opus, "0"), Some(Codec::Opus));
        let red = prefer_codecs(&opus, &[("0".to_string(), Codec::Red)]);
        assert_eq!(first_codec(&red, "0"), Some(Codec::Red));
        assert_eq!(first_video_codec(AUDIO, "0"), None);
    }

    #[test]
    fn unknown_mids_codecs_and_garbage_are_left_alone() {
        assert_eq!(prefer_codecs(ANSWER, &[]), ANSWER);
        let h264 = [("1".to_string(), Codec::H264)];
        assert_eq!(prefer_codecs(ANSWER, &h264), ANSWER);
        assert_eq!(prefer_codecs("m=x\r\n", &h264), "m=x\r\n");
        assert_eq!(first_video_codec("garbage", "1"), None);
        assert_eq!(codec_named("video/vp9"), Some(Codec::Vp9));
        assert_eq!(codec_named("opus"), None);
    }
}

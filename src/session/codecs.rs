//! Which codecs a peer connection negotiates: `room.enabled_codecs`, as LiveKit reads
//! it. A publisher can only send what is listed; one whose offer holds nothing listed
//! for an m-line gets that m-line rejected.

/// The codecs corelay can forward, each on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnabledCodecs {
    pub opus: bool,
    /// RFC 2198 redundancy around Opus (`audio/red`); needs Opus.
    pub red: bool,
    pub vp8: bool,
    pub vp9: bool,
    pub h264: bool,
    pub av1: bool,
}

impl EnabledCodecs {
    pub const ALL: EnabledCodecs = EnabledCodecs {
        opus: true,
        red: true,
        vp8: true,
        vp9: true,
        h264: true,
        av1: true,
    };

    /// From mime types such as `video/VP8` (case does not matter). Others LiveKit
    /// configs list (`video/rtx`, `audio/pcmu`, `video/H265`) are not forwarded by
    /// corelay and are skipped.
    pub fn from_mimes<'a>(mimes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut on = EnabledCodecs {
            opus: false,
            red: false,
            vp8: false,
            vp9: false,
            h264: false,
            av1: false,
        };
        for mime in mimes {
            match mime.to_ascii_lowercase().as_str() {
                "audio/opus" => on.opus = true,
                "audio/red" => on.red = true,
                "video/vp8" => on.vp8 = true,
                "video/vp9" => on.vp9 = true,
                "video/h264" => on.h264 = true,
                "video/av1" => on.av1 = true,
                _ => {}
            }
        }
        on
    }
}

impl EnabledCodecs {
    /// The enabled codecs' mime types, as JoinResponse `enabled_publish_codecs` lists
    /// them (the SDKs pick a publishing codec among these).
    pub fn mimes(&self) -> Vec<&'static str> {
        [
            (self.opus, "audio/opus"),
            (self.opus && self.red, "audio/red"),
            (self.vp8, "video/VP8"),
            (self.vp9, "video/VP9"),
            (self.h264, "video/H264"),
            (self.av1, "video/AV1"),
        ]
        .into_iter()
        .filter_map(|(on, mime)| on.then_some(mime))
        .collect()
    }
}

impl Default for EnabledCodecs {
    fn default() -> Self {
        EnabledCodecs::ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mimes_in_any_case() {
        let c = EnabledCodecs::from_mimes(["audio/opus", "VIDEO/vp8", "video/unknown"]);
        assert!(c.opus && c.vp8);
        assert!(!c.red && !c.vp9 && !c.h264 && !c.av1);
        assert_eq!(c.mimes(), ["audio/opus", "video/VP8"]);
        assert_eq!(EnabledCodecs::ALL.mimes().len(), 6);
    }
}

//! TrackInfo and downtracks as LiveKit builds them: from an AddTrackRequest, codec
//! mime names, layer rids, and the kind of downtrack a track needs.

use livekit_protocol as lk;

use super::participant::DownTrack;
use crate::ids;
use crate::session::{codec_order, Codec, MediaKind};
use crate::sfu::layers::{rid_for, LayerState};
use crate::sfu::svc::SvcSelector;

/// The rid of the layer with `quality`: as announced in AddTrackRequest, else the
/// SDKs' convention (q/h/f).
pub(super) fn layer_rid(layers: &[lk::VideoLayer], quality: lk::VideoQuality) -> String {
    // The announced layer of that quality, else the nearest announced one (lower on a
    // tie): an SDK sending two layers announces LOW and MEDIUM (`q`, `h`), so HIGH is
    // its `h`, never an `f` that does not exist and would be waited for in vain.
    let wanted = quality as i32;
    let Some(layer) = layers
        .iter()
        .filter(|l| l.quality != lk::VideoQuality::Off as i32)
        .min_by_key(|l| ((l.quality - wanted).abs(), l.quality))
    else {
        return rid_for(quality).to_string();
    };
    if !layer.rid.is_empty() {
        return layer.rid.clone();
    }
    let q = lk::VideoQuality::try_from(layer.quality).unwrap_or(quality);
    rid_for(q).to_string()
}

pub(super) fn track_type(kind: MediaKind) -> lk::TrackType {
    if kind == MediaKind::Audio {
        lk::TrackType::Audio
    } else {
        lk::TrackType::Video
    }
}

/// The TrackInfo LiveKit builds from an AddTrackRequest. Its sid encodes kind and
/// source (`TR_VC…` camera video, `TR_AM…` microphone), as LiveKit's do.
// Deprecated fields (simulcast, layers, stereo, disable_dtx) are still read by SDKs
// released before their replacements, so they are filled in as LiveKit does.
#[allow(deprecated)]
pub(super) fn track_info(req: &lk::AddTrackRequest) -> lk::TrackInfo {
    let audio = req.r#type == lk::TrackType::Audio as i32;
    let source = lk::TrackSource::try_from(req.source).unwrap_or(lk::TrackSource::Unknown);
    let source_letter = match source {
        lk::TrackSource::Camera => "C",
        lk::TrackSource::Microphone => "M",
        lk::TrackSource::ScreenShare => "S",
        lk::TrackSource::ScreenShareAudio => "s",
        lk::TrackSource::Unknown => "U",
    };
    let prefix = format!(
        "{}{}{}",
        ids::TRACK_PREFIX,
        if audio { "A" } else { "V" },
        source_letter
    );
    let stream = match source {
        lk::TrackSource::ScreenShare | lk::TrackSource::ScreenShareAudio => "screen",
        _ => "camera",
    };
    let layers = req.layers.clone();
    let mut codecs: Vec<lk::SimulcastCodecInfo> = req
        .simulcast_codecs
        .iter()
        .map(|c| lk::SimulcastCodecInfo {
            mime_type: mime(&c.codec, audio),
            cid: c.cid.clone(),
            layers: layers.clone(),
            ..Default::default()
        })
        .collect();
    if codecs.is_empty() {
        codecs.push(lk::SimulcastCodecInfo {
            // A video codec is only known once negotiated (see `on_offer`); claiming
            // VP8 here would make livekit-client drop the codec it asked for.
            mime_type: if audio {
                "audio/opus".into()
            } else {
                String::new()
            },
            cid: req.cid.clone(),
            layers: layers.clone(),
            ..Default::default()
        });
    }
    lk::TrackInfo {
        sid: ids::guid(&prefix),
        r#type: req.r#type,
        name: req.name.clone(),
        muted: req.muted,
        width: req.width,
        height: req.height,
        simulcast: layers.len() > 1,
        disable_dtx: req.disable_dtx,
        source: req.source,
        mime_type: codecs[0].mime_type.clone(),
        layers,
        codecs,
        stereo: req.stereo,
        disable_red: req.disable_red,
        encryption: req.encryption,
        stream: if req.stream.is_empty() {
            stream.into()
        } else {
            req.stream.clone()
        },
        audio_features: req.audio_features.clone(),
        backup_codec_policy: req.backup_codec_policy,
        ..Default::default()
    }
}

/// SDKs send codec names bare (`vp8`) or as MIME types.
/// A new downtrack; a VP9 track with layers but no simulcast rids is SVC.
#[allow(deprecated)] // TrackInfo.simulcast: set from the offered rids at publish
pub(super) fn down_track(
    track: &lk::TrackInfo,
    kind: MediaKind,
    layers: LayerState,
    requested: Option<String>,
) -> DownTrack {
    let vp9 = codec_order::codec_named(&track.mime_type) == Some(Codec::Vp9);
    let svc = vp9 && !track.simulcast && layers.order.len() > 1;
    let mut down = DownTrack::new(kind, layers, requested);
    if svc {
        down.svc = Some(SvcSelector::new(0));
        down.refresh();
    }
    down
}

pub(super) fn mime(codec: &str, audio: bool) -> String {
    if codec.contains('/') {
        return codec.to_string();
    }
    let upper = codec.to_ascii_uppercase();
    if audio {
        format!("audio/{}", codec.to_ascii_lowercase())
    } else {
        format!("video/{upper}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(quality: lk::VideoQuality, rid: &str) -> lk::VideoLayer {
        lk::VideoLayer {
            quality: quality as i32,
            rid: rid.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_quality_maps_to_a_layer_that_was_announced() {
        use lk::VideoQuality::{High, Low, Medium};
        let two = [layer(Low, ""), layer(Medium, "")];
        assert_eq!(layer_rid(&two, High), "h");
        assert_eq!(layer_rid(&two, Low), "q");
        let three = [layer(Low, ""), layer(Medium, ""), layer(High, "")];
        assert_eq!(layer_rid(&three, High), "f");
        let gap = [layer(Low, "a"), layer(High, "c")];
        assert_eq!(layer_rid(&gap, Medium), "a", "lower on a tie");
        assert_eq!(layer_rid(&gap, High), "c", "the announced rid");
        assert_eq!(layer_rid(&[], High), "f");
    }
}

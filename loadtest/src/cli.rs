//! Command line, with `lk`-style environment fallbacks.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use livekit_protocol as lk;

/// Which signal path clients speak.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalPath {
    /// `/rtc`: a subscriber PC the server offers, and a publisher PC.
    V0,
    /// `/rtc/v1`: one PC that the client always offers (what current SDKs use).
    V1,
}

/// A simulcast quality a subscriber asks for.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubQuality {
    Low,
    Medium,
    High,
}

impl SubQuality {
    pub fn video_quality(self) -> lk::VideoQuality {
        match self {
            SubQuality::Low => lk::VideoQuality::Low,
            SubQuality::Medium => lk::VideoQuality::Medium,
            SubQuality::High => lk::VideoQuality::High,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SubQuality::Low => "low",
            SubQuality::Medium => "medium",
            SubQuality::High => "high",
        }
    }
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadtest",
    version,
    about = "Simulates LiveKit participants (signal + WebRTC media) against an SFU and reports \
             what subscribers got: join time, one-way latency, loss, jitter, errors.",
    after_help = "Exit status: 0 when every participant joined and every expected track was \
                  received; 1 otherwise (errors, missing tracks, nothing connected); 2 on bad \
                  arguments. The summary is printed (and --json written) in every case."
)]
pub struct Args {
    /// Server URL (ws:// or http://; TLS is not supported).
    #[arg(long, env = "LIVEKIT_URL", default_value = "ws://127.0.0.1:7880")]
    pub url: String,
    #[arg(long, env = "LIVEKIT_API_KEY", default_value = "devkey")]
    pub api_key: String,
    #[arg(
        long,
        env = "LIVEKIT_API_SECRET",
        default_value = "secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub api_secret: String,
    /// Number of rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Video publishers per room (each publishes one camera track and subscribes to the others).
    #[arg(long, default_value_t = 1)]
    pub pubs: u32,
    /// Audio publishers per room (each publishes one microphone track).
    #[arg(long, default_value_t = 0)]
    pub audio_pubs: u32,
    /// Subscribers per room (subscribe only).
    #[arg(long, default_value_t = 1)]
    pub subs: u32,
    /// Seconds to run once every participant has been started (after the ramp).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Video resolution WIDTHxHEIGHT (announced in AddTrackRequest and VP8 keyframes).
    #[arg(long, default_value = "640x360", value_parser = parse_resolution)]
    pub video_resolution: (u32, u32),
    /// Video bitrate in kbit/s.
    #[arg(long, default_value_t = 800)]
    pub video_bitrate: u32,
    /// Video frame rate.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Keyframe interval in frames.
    #[arg(long, default_value_t = 60)]
    pub gop: u32,
    /// Audio bitrate in kbit/s (20 ms packets).
    #[arg(long, default_value_t = 32)]
    pub audio_bitrate: u32,
    /// Publish video as three simulcast layers, like livekit-client: rids q/h/f at 1/4,
    /// 1/2 and the full --video-resolution, at 15 %, 35 % and 100 % of --video-bitrate
    /// (so a publisher sends 1.5× --video-bitrate in all).
    #[arg(long)]
    pub simulcast: bool,
    /// Subscribers ask for this quality of every video track they subscribe to
    /// (UpdateTrackSettings with the quality and that layer's size).
    #[arg(long, value_enum)]
    pub sub_quality: Option<SubQuality>,
    /// The first N subscribers of each room receive through a narrow downlink: a token
    /// bucket of --constrain-kbps with a small queue in front of their subscriber PC.
    #[arg(long, default_value_t = 0)]
    pub constrained_subs: u32,
    /// Downlink rate of constrained subscribers, kbit/s (UDP payload bytes).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub constrain_kbps: u32,
    /// Queue of the constrained downlink, in ms at its rate (datagrams beyond it are dropped).
    #[arg(long, default_value_t = 100)]
    pub constrain_queue_ms: u32,
    /// Subscribers join as viewers: their tokens cannot publish (a broadcast's audience,
    /// as livestreams configure them). Publishers' tokens can, as always.
    #[arg(long)]
    pub viewers: bool,
    /// Publishers pace video as libwebrtc's sender does (2.5x the bitrate, in 5 ms
    /// bursts) instead of sending each frame at once, and stamp each packet when it
    /// leaves: latency then counts from the packet's departure, so a keyframe no longer
    /// arrives as one burst of ~50 packets that the SFU must push to every subscriber.
    #[arg(long)]
    pub pace: bool,
    /// Signal path: v1 (`/rtc/v1`, one peer connection per participant, the SDKs'
    /// default) or v0 (`/rtc`, a subscriber and a publisher PC).
    #[arg(long, value_enum, default_value = "v1")]
    pub signal: SignalPath,
    /// Joins per second (0 = all at once).
    #[arg(long, default_value_t = 20.0)]
    pub ramp: f64,
    /// Worker threads the participants are spread over.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// PID of the server (same host): report its CPU time per received packet.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's Prometheus endpoint (`http://HOST:PORT/metrics`, its
    /// `prometheus.port`): report how many packets each shard forwarded.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Room names are PREFIX0, PREFIX1, ... (default: a per-run prefix, so reruns against
    /// the same server do not collide).
    #[arg(long)]
    pub room_prefix: Option<String>,
    /// Seconds to keep receiving after publishers stop, before leaving.
    #[arg(long, default_value_t = 1.0)]
    pub drain: f64,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_resolution(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
    let w: u32 = w.trim().parse().map_err(|e| format!("width: {e}"))?;
    let h: u32 = h.trim().parse().map_err(|e| format!("height: {e}"))?;
    if w == 0 || h == 0 || w > 16383 || h > 16383 {
        return Err(format!("resolution out of range: {s}"));
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        assert_eq!(parse_resolution("640x360"), Ok((640, 360)));
        assert!(parse_resolution("640").is_err());
        assert!(parse_resolution("0x1").is_err());
    }

    #[test]
    fn defaults_parse() {
        let a = Args::try_parse_from(["loadtest", "--rooms", "2", "--simulcast"]).unwrap();
        assert_eq!(a.rooms, 2);
        assert_eq!(a.threads, 2);
        assert!(a.simulcast);
        assert_eq!(a.sub_quality, None);
        assert_eq!(a.constrained_subs, 0);
        let a = Args::try_parse_from([
            "loadtest",
            "--sub-quality",
            "low",
            "--constrained-subs",
            "2",
            "--constrain-kbps",
            "400",
        ])
        .unwrap();
        assert_eq!(a.sub_quality, Some(SubQuality::Low));
        assert_eq!(a.constrained_subs, 2);
        assert_eq!(a.constrain_kbps, 400);
        assert!(Args::try_parse_from(["loadtest", "--constrain-kbps", "0"]).is_err());
        assert!(Args::try_parse_from(["loadtest", "--sub-quality", "ultra"]).is_err());
    }
}

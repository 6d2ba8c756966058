//! Fuzz targets for every corelay decoder that takes outside input. Each target is a
//! `fn(&[u8])` that must return normally for any input: a panic, an abort or a hang
//! is a finding. `bin/afl.rs` runs one under AFL++, `bin/replay.rs` runs saved inputs
//! without it (reproducing a crash, checking a fix).

mod targets;

/// Inputs are cut here: every decoder bounds its own input well below this (HTTP head
/// 64 KiB, JWT 4 KiB), so longer ones only slow the fuzzer down.
pub const MAX_INPUT: usize = 64 * 1024;

/// One fuzz target: any input must return normally.
pub type Target = fn(&[u8]);

/// Every target, by the name `scripts/fuzz` and the corpus directories use.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_head", targets::http::head),
    ("ws_frames", targets::signal::ws_frames),
    ("signal_proto", targets::signal::proto),
    ("signal_json", targets::signal::json),
    ("signal_room", targets::signal::room),
    ("join_request", targets::signal::join_request),
    ("twirp_proto", targets::twirp::proto),
    ("twirp_json", targets::twirp::json),
    ("jwt", targets::jwt::verify),
    ("config_yaml", targets::config::yaml),
    ("stun", targets::datagram::stun),
    ("demux", targets::datagram::demux),
    ("tcp_stream", targets::datagram::tcp_stream),
    ("turn", targets::datagram::turn),
    ("rtcp", targets::datagram::rtcp),
    ("vp8", targets::payload::vp8),
    ("vp9", targets::payload::vp9),
    ("red", targets::payload::red),
    ("sdp", targets::sdp::offer),
    ("candidate", targets::sdp::candidate),
    ("data_packet", targets::data::packet),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Runs `f` on `data`, cut to [`MAX_INPUT`].
pub fn run(f: Target, data: &[u8]) {
    f(&data[..data.len().min(MAX_INPUT)]);
}

//! Writes the generated part of the seed corpus (`fuzz/corpus/<target>/gen-*`): real
//! encodings of the messages each decoder sees, made with the same crates the clients'
//! SDKs mirror. Run from the repository root: `cargo run -p corelay-fuzz --example seeds`.

use std::fs;
use std::path::Path;

use corelay::auth::{join_claims, sign};
use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use prost::Message as _;

const SECRET: &str = "a-secret-of-at-least-32-bytes-long";
const CANDIDATE: &str = "candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0";

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    fs::write(dir.join(format!("gen-{name}")), data).expect("seed written");
}

fn requests() -> Vec<(&'static str, lk::SignalRequest)> {
    let offer = include_str!("../corpus/sdp/str0m-vp8-h264-vp9-av1.sdp");
    let init = format!(r#"{{"candidate":"{CANDIDATE}","sdpMid":"0","sdpMLineIndex":0}}"#);
    let messages = vec![
        ("ping", Req::Ping(1_700_000_000_000)),
        (
            "ping-req",
            Req::PingReq(lk::Ping {
                timestamp: 1_700_000_000_000,
                rtt: 20,
            }),
        ),
        (
            "offer",
            Req::Offer(lk::SessionDescription {
                r#type: "offer".into(),
                sdp: offer.into(),
                id: 1,
                ..Default::default()
            }),
        ),
        (
            "trickle",
            Req::Trickle(lk::TrickleRequest {
                candidate_init: init,
                target: lk::SignalTarget::Publisher as i32,
                ..Default::default()
            }),
        ),
        (
            "add-track",
            Req::AddTrack(lk::AddTrackRequest {
                cid: "cam-1".into(),
                name: "camera".into(),
                r#type: lk::TrackType::Video as i32,
                width: 1280,
                height: 720,
                source: lk::TrackSource::Camera as i32,
                layers: vec![lk::VideoLayer {
                    quality: lk::VideoQuality::High as i32,
                    width: 1280,
                    height: 720,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        (
            "subscription",
            Req::Subscription(lk::UpdateSubscription {
                track_sids: vec!["TR_abc".into()],
                subscribe: true,
                ..Default::default()
            }),
        ),
        (
            "track-setting",
            Req::TrackSetting(lk::UpdateTrackSettings {
                track_sids: vec!["TR_abc".into()],
                quality: lk::VideoQuality::Low as i32,
                fps: 15,
                ..Default::default()
            }),
        ),
        (
            "mute",
            Req::Mute(lk::MuteTrackRequest {
                sid: "TR_abc".into(),
                muted: true,
            }),
        ),
        (
            "leave",
            Req::Leave(lk::LeaveRequest {
                reason: lk::DisconnectReason::ClientInitiated as i32,
                ..Default::default()
            }),
        ),
        (
            "metadata",
            Req::UpdateMetadata(lk::UpdateParticipantMetadata {
                metadata: "m".into(),
                name: "n".into(),
                ..Default::default()
            }),
        ),
    ];
    messages
        .into_iter()
        .map(|(name, m)| (name, lk::SignalRequest { message: Some(m) }))
        .collect()
}

/// A masked client frame (FIN set), as browsers send.
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn signal() {
    for (name, request) in requests() {
        let proto = request.encode_to_vec();
        let json = serde_json::to_vec(&request).expect("protojson");
        write("signal_proto", name, &proto);
        write("signal_room", name, &proto);
        write("signal_json", name, &json);
        write(
            "ws_frames",
            &format!("{name}-binary"),
            &ws_frame(0x2, &proto),
        );
        write("ws_frames", &format!("{name}-text"), &ws_frame(0x1, &json));
    }
    let mut two = ws_frame(0x9, b"hi");
    two.extend(ws_frame(0x2, &requests()[0].1.encode_to_vec()));
    two.extend(ws_frame(0x8, &[0x03, 0xe8]));
    write("ws_frames", "ping-request-close", &two);
}

fn twirp() {
    let bodies: Vec<(u8, Vec<u8>, String)> = vec![
        (
            0,
            lk::CreateRoomRequest {
                name: "r".into(),
                empty_timeout: 300,
                max_participants: 10,
                metadata: "m".into(),
                ..Default::default()
            }
            .encode_to_vec(),
            r#"{"name":"r","empty_timeout":300,"maxParticipants":10}"#.into(),
        ),
        (
            1,
            lk::ListRoomsRequest {
                names: vec!["r".into(), "s".into()],
            }
            .encode_to_vec(),
            r#"{"names":["r","s"]}"#.into(),
        ),
        (
            5,
            lk::RoomParticipantIdentity {
                room: "r".into(),
                identity: "alice".into(),
                ..Default::default()
            }
            .encode_to_vec(),
            r#"{"room":"r","identity":"alice"}"#.into(),
        ),
        (
            8,
            lk::UpdateParticipantRequest {
                room: "r".into(),
                identity: "alice".into(),
                metadata: "m".into(),
                permission: Some(lk::ParticipantPermission {
                    can_publish: true,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
            r#"{"room":"r","identity":"alice","permission":{"canPublish":true},"attributes":{"a":"b"}}"#
                .into(),
        ),
        (
            10,
            lk::SendDataRequest {
                room: "r".into(),
                data: b"hello".to_vec(),
                kind: lk::data_packet::Kind::Reliable as i32,
                destination_identities: vec!["bob".into()],
                ..Default::default()
            }
            .encode_to_vec(),
            r#"{"room":"r","data":"aGVsbG8=","kind":"RELIABLE","destinationIdentities":["bob"]}"#
                .into(),
        ),
        (
            11,
            lk::ForwardParticipantRequest {
                room: "r".into(),
                identity: "alice".into(),
                destination_room: "s".into(),
            }
            .encode_to_vec(),
            r#"{"room":"r","identity":"alice","destination_room":"s"}"#.into(),
        ),
    ];
    for (method, proto, json) in bodies {
        let mut p = vec![method];
        p.extend(proto);
        write("twirp_proto", &format!("method-{method}"), &p);
        let mut j = vec![method];
        j.extend(json.into_bytes());
        write("twirp_json", &format!("method-{method}"), &j);
    }
}

fn jwt() {
    let claims = join_claims("APIfuzz", "alice", "r", 1_700_000_000, 3600);
    let token = sign(&claims, SECRET).expect("signed");
    write("jwt", "join", token.as_bytes());
    let mut tampered = token.clone();
    tampered.pop();
    write("jwt", "bad-signature", tampered.as_bytes());
    let mut admin = join_claims("APIfuzz", "", "", 1_700_000_000, 600);
    admin.video.room_admin = true;
    admin.video.room_list = true;
    admin.nbf = Some(1_700_000_000);
    write(
        "jwt",
        "admin",
        sign(&admin, SECRET).expect("signed").as_bytes(),
    );
}

fn data_packets() {
    let packets = vec![
        (
            "user",
            lk::DataPacket {
                sequence: 1,
                destination_identities: vec!["bob".into()],
                value: Some(lk::data_packet::Value::User(lk::UserPacket {
                    payload: b"hello".to_vec(),
                    topic: Some("chat".into()),
                    ..Default::default()
                })),
                ..Default::default()
            },
        ),
        (
            "chat",
            lk::DataPacket {
                sequence: 2,
                value: Some(lk::data_packet::Value::ChatMessage(lk::ChatMessage {
                    id: "m1".into(),
                    timestamp: 1_700_000_000_000,
                    message: "hi".into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
        ),
        (
            "rpc",
            lk::DataPacket {
                value: Some(lk::data_packet::Value::RpcRequest(lk::RpcRequest {
                    id: "1".into(),
                    method: "m".into(),
                    payload: "{}".into(),
                    response_timeout_ms: 1000,
                    version: 1,
                    ..Default::default()
                })),
                ..Default::default()
            },
        ),
    ];
    for (i, (name, packet)) in packets.into_iter().enumerate() {
        let mut d = vec![i as u8];
        d.extend(packet.encode_to_vec());
        write("data_packet", name, &d);
    }
}

fn main() {
    signal();
    twirp();
    jwt();
    data_packets();
}

//! Cost of turning a RoomService call into a shard operation: body decode (protobuf as
//! the Python SDK sends it, JSON as the Node SDK does) plus the grant check, and of
//! encoding the answer.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use livekit_protocol as lk;
use prost::Message;

use corelay::api::room_service::{plan, respond, Shape, SERVICE};
use corelay::api::twirp::Encoding;
use corelay::auth::Claims;
use corelay::room::RoomReply;

fn bench(c: &mut Criterion) {
    let mut claims = Claims::default();
    claims.video.room_create = true;
    let req = lk::CreateRoomRequest {
        name: "a-room-name-of-typical-length".into(),
        empty_timeout: 300,
        max_participants: 50,
        metadata: r#"{"topic":"weekly sync","owner":"alice"}"#.into(),
        ..Default::default()
    };
    let proto = req.encode_to_vec();
    let json = br#"{"name":"a-room-name-of-typical-length","emptyTimeout":300,"maxParticipants":50,"metadata":"{\"topic\":\"weekly sync\",\"owner\":\"alice\"}"}"#;

    c.bench_function("twirp_plan_create_room_protobuf", |b| {
        b.iter(|| {
            plan(
                SERVICE,
                "CreateRoom",
                Some(&claims),
                Encoding::Protobuf,
                black_box(&proto),
            )
        })
    });
    c.bench_function("twirp_plan_create_room_json", |b| {
        b.iter(|| {
            plan(
                SERVICE,
                "CreateRoom",
                Some(&claims),
                Encoding::Json,
                black_box(json),
            )
        })
    });

    let rooms: Vec<lk::Room> = (0..20)
        .map(|i| lk::Room {
            sid: format!("RM_{i:012}"),
            name: format!("room-{i}"),
            empty_timeout: 300,
            creation_time: 1_700_000_000,
            ..Default::default()
        })
        .collect();
    for (name, encoding) in [("protobuf", Encoding::Protobuf), ("json", Encoding::Json)] {
        c.bench_function(&format!("twirp_respond_list_20_rooms_{name}"), |b| {
            b.iter(|| {
                respond(
                    Shape::ListRooms,
                    encoding,
                    Ok(RoomReply::Rooms(black_box(rooms.clone()))),
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

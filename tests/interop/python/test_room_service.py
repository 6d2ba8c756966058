"""RoomService interop tests: the official Python SDK (livekit-api) against corelay.

The SDK speaks Twirp with ``Content-Type: application/protobuf`` and raises
``livekit.api.ServerError`` (alias ``TwirpError``) with ``.code`` (the Twirp
code from the JSON error body, or ``"unknown"`` when the body is not JSON) and
``.status`` (the HTTP status).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any, Awaitable, Callable, Optional, TypeVar
from urllib.parse import quote, urlparse

import pytest
from livekit import api

from conftest import API_KEY, API_SECRET, Corelay

T = TypeVar("T")

TWIRP_PREFIX = "/twirp/livekit.RoomService/"


# --- helpers -------------------------------------------------------------------


def room_name(tag: str) -> str:
    """A room name unique to this test run (the server is shared by the session)."""
    return f"py-{tag}-{uuid.uuid4().hex[:10]}"


def call(
    c: Corelay,
    fn: Callable[[api.LiveKitAPI], Awaitable[T]],
    *,
    key: str = API_KEY,
    secret: str = API_SECRET,
) -> T:
    """Run one SDK call against the server with a fresh LiveKitAPI client."""

    async def go() -> T:
        async with api.LiveKitAPI(c.url, key, secret) as lk:
            return await fn(lk)

    return asyncio.run(go())


def call_err(c: Corelay, fn: Callable[[api.LiveKitAPI], Awaitable[Any]], **kw: Any) -> api.ServerError:
    with pytest.raises(api.ServerError) as ei:
        call(c, fn, **kw)
    return ei.value


def assert_twirp_error(err: api.ServerError, code: str, status: int) -> None:
    assert (err.code, err.status) == (code, status), f"expected {code}/{status}, got {err}"


def token(grants: api.VideoGrants, *, identity: str = "", key: str = API_KEY, secret: str = API_SECRET,
          ttl: Optional[timedelta] = None) -> str:
    at = api.AccessToken(key, secret).with_grants(grants)
    if identity:
        at = at.with_identity(identity)
    if ttl is not None:
        at = at.with_ttl(ttl)
    return at.to_jwt()


def join_token(room: str = "any-room", identity: str = "alice") -> str:
    return token(api.VideoGrants(room_join=True, room=room), identity=identity)


class Resp:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"body is not JSON (status {self.status}): {self.body[:500]!r}")

    def __repr__(self) -> str:
        return f"Resp(status={self.status}, content-type={self.headers.get('Content-Type')!r}, body={self.body[:500]!r})"


def http_req(method: str, url: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
             timeout: float = 10) -> Resp:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def twirp_raw(c: Corelay, method: str, body: bytes, jwt: Optional[str],
              content_type: str = "application/protobuf") -> Resp:
    headers = {"Content-Type": content_type}
    if jwt is not None:
        headers["Authorization"] = f"Bearer {jwt}"
    return http_req("POST", c.url + TWIRP_PREFIX + method, body, headers)


def assert_twirp_json(resp: Resp, code: str, status: int) -> dict:
    assert resp.status == status, resp
    # The Node SDK only parses error bodies whose Content-Type is exactly application/json.
    assert resp.headers.get("Content-Type") == "application/json", resp
    body = resp.json()
    assert body.get("code") == code, resp
    assert isinstance(body.get("msg"), str), resp
    return body


def service_token() -> str:
    return token(api.VideoGrants(room_create=True, room_list=True))


def create(c: Corelay, **kw: Any) -> api.Room:
    return call(c, lambda lk: lk.room.create_room(api.CreateRoomRequest(**kw)))


# --- RoomService through the SDK ----------------------------------------------------


def test_create_room(corelay: Corelay) -> None:
    name = room_name("create")
    before = int(time.time())
    room = create(corelay, name=name, empty_timeout=123, max_participants=7, metadata="hello")
    after = int(time.time())
    assert room.sid.startswith("RM_"), room
    assert len(room.sid) > len("RM_"), room
    assert room.name == name
    assert room.empty_timeout == 123
    assert room.max_participants == 7
    assert room.metadata == "hello"
    assert room.num_participants == 0
    assert before - 5 <= room.creation_time <= after + 5, room


def test_create_room_defaults(corelay: Corelay) -> None:
    name = room_name("defaults")
    room = create(corelay, name=name)
    assert room.sid.startswith("RM_"), room
    assert room.name == name
    assert room.empty_timeout == 300, room
    assert room.departure_timeout == 20, room
    assert room.max_participants == 0, room
    assert room.metadata == ""
    assert room.num_participants == 0


def test_create_existing_returns_same_room(corelay: Corelay) -> None:
    name = room_name("same")
    first = create(corelay, name=name, metadata="first")
    second = create(corelay, name=name, metadata="second")
    assert second.sid == first.sid
    assert second.name == name
    assert second.creation_time == first.creation_time


def test_create_room_empty_name_is_invalid_argument(corelay: Corelay) -> None:
    err = call_err(corelay, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="")))
    assert_twirp_error(err, "invalid_argument", 400)


def test_list_rooms(corelay: Corelay) -> None:
    a, b = room_name("list-a"), room_name("list-b")
    ra = create(corelay, name=a)
    rb = create(corelay, name=b)

    all_rooms = call(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest())).rooms
    by_name = {r.name: r for r in all_rooms}
    assert a in by_name and b in by_name, [r.name for r in all_rooms]
    assert by_name[a].sid == ra.sid
    assert by_name[b].sid == rb.sid

    filtered = call(
        corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[a, "py-no-such-room"]))
    ).rooms
    assert [r.name for r in filtered] == [a]
    assert filtered[0].sid == ra.sid

    none = call(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=["py-no-such-room"]))).rooms
    assert list(none) == []


def test_update_room_metadata(corelay: Corelay) -> None:
    name = room_name("meta")
    created = create(corelay, name=name, metadata="v1")
    updated = call(
        corelay,
        lambda lk: lk.room.update_room_metadata(api.UpdateRoomMetadataRequest(room=name, metadata="v2")),
    )
    assert updated.sid == created.sid
    assert updated.name == name
    assert updated.metadata == "v2"
    listed = call(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[name]))).rooms
    assert [r.metadata for r in listed] == ["v2"]


def test_update_room_metadata_missing_room(corelay: Corelay) -> None:
    err = call_err(
        corelay,
        lambda lk: lk.room.update_room_metadata(
            api.UpdateRoomMetadataRequest(room=room_name("absent"), metadata="x")
        ),
    )
    assert_twirp_error(err, "not_found", 404)


def test_list_participants_empty(corelay: Corelay) -> None:
    name = room_name("parts")
    create(corelay, name=name)
    res = call(corelay, lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=name)))
    assert list(res.participants) == []


def test_participant_calls_unknown_identity_not_found(corelay: Corelay) -> None:
    name = room_name("ident")
    create(corelay, name=name)
    calls = {
        "get_participant": lambda lk: lk.room.get_participant(
            api.RoomParticipantIdentity(room=name, identity="nobody")
        ),
        "remove_participant": lambda lk: lk.room.remove_participant(
            api.RoomParticipantIdentity(room=name, identity="nobody")
        ),
        "update_participant": lambda lk: lk.room.update_participant(
            api.UpdateParticipantRequest(room=name, identity="nobody", metadata="m")
        ),
        "mute_published_track": lambda lk: lk.room.mute_published_track(
            api.MuteRoomTrackRequest(room=name, identity="nobody", track_sid="TR_x", muted=True)
        ),
        "update_subscriptions": lambda lk: lk.room.update_subscriptions(
            api.UpdateSubscriptionsRequest(room=name, identity="nobody", track_sids=["TR_x"], subscribe=True)
        ),
    }
    failures = []
    for what, fn in calls.items():
        try:
            call(corelay, fn)
            failures.append(f"{what}: succeeded, expected not_found/404")
        except api.ServerError as e:
            if (e.code, e.status) != ("not_found", 404):
                failures.append(f"{what}: {e}")
    assert not failures, "\n".join(failures)


def test_participant_calls_missing_room_not_found(corelay: Corelay) -> None:
    name = room_name("noroom")
    calls = {
        "list_participants": lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=name)),
        "get_participant": lambda lk: lk.room.get_participant(
            api.RoomParticipantIdentity(room=name, identity="nobody")
        ),
        "remove_participant": lambda lk: lk.room.remove_participant(
            api.RoomParticipantIdentity(room=name, identity="nobody")
        ),
        "update_participant": lambda lk: lk.room.update_participant(
            api.UpdateParticipantRequest(room=name, identity="nobody", metadata="m")
        ),
        "mute_published_track": lambda lk: lk.room.mute_published_track(
            api.MuteRoomTrackRequest(room=name, identity="nobody", track_sid="TR_x", muted=True)
        ),
        "update_subscriptions": lambda lk: lk.room.update_subscriptions(
            api.UpdateSubscriptionsRequest(room=name, identity="nobody", track_sids=["TR_x"], subscribe=True)
        ),
        "send_data": lambda lk: lk.room.send_data(
            api.SendDataRequest(room=name, data=b"hi", kind=api.DataPacket.Kind.RELIABLE)
        ),
    }
    failures = []
    for what, fn in calls.items():
        try:
            call(corelay, fn)
            failures.append(f"{what}: succeeded, expected not_found/404")
        except api.ServerError as e:
            if (e.code, e.status) != ("not_found", 404):
                failures.append(f"{what}: {e}")
    assert not failures, "\n".join(failures)


def test_send_data_to_empty_room(corelay: Corelay) -> None:
    name = room_name("data")
    create(corelay, name=name)
    res = call(
        corelay,
        lambda lk: lk.room.send_data(
            api.SendDataRequest(room=name, data=b"hello", kind=api.DataPacket.Kind.RELIABLE, topic="t")
        ),
    )
    assert isinstance(res, api.SendDataResponse)


def test_delete_room(corelay: Corelay) -> None:
    name = room_name("delete")
    create(corelay, name=name)
    res = call(corelay, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=name)))
    assert isinstance(res, api.DeleteRoomResponse)
    listed = call(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[name]))).rooms
    assert list(listed) == []

    err = call_err(corelay, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=name)))
    assert_twirp_error(err, "not_found", 404)


def test_recreate_after_delete_gets_new_sid(corelay: Corelay) -> None:
    name = room_name("recreate")
    first = create(corelay, name=name)
    call(corelay, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=name)))
    second = create(corelay, name=name)
    assert second.sid.startswith("RM_")
    assert second.sid != first.sid


# --- tokens ----------------------------------------------------------------------


def test_wrong_secret_is_401(corelay: Corelay) -> None:
    err = call_err(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest()), secret="not-the-secret")
    assert err.status == 401, str(err)


def test_unknown_api_key_is_401(corelay: Corelay) -> None:
    err = call_err(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest()), key="nokey")
    assert err.status == 401, str(err)


def test_bad_signature_raw_is_plain_401(corelay: Corelay) -> None:
    bad = token(api.VideoGrants(room_list=True), secret="not-the-secret")
    resp = twirp_raw(corelay, "ListRooms", api.ListRoomsRequest().SerializeToString(), bad)
    assert resp.status == 401, resp


def test_expired_token_is_401(corelay: Corelay) -> None:
    # exp one hour in the past: well beyond the 60 s leeway.
    expired = token(api.VideoGrants(room_list=True), ttl=timedelta(hours=-1))
    resp = twirp_raw(corelay, "ListRooms", api.ListRoomsRequest().SerializeToString(), expired)
    assert resp.status == 401, resp


def test_missing_authorization_is_401(corelay: Corelay) -> None:
    resp = twirp_raw(corelay, "ListRooms", api.ListRoomsRequest().SerializeToString(), None)
    assert resp.status == 401, resp


def test_join_token_cannot_create_room(corelay: Corelay) -> None:
    jwt = token(api.VideoGrants(room_join=True, room="x"), identity="alice")
    body = api.CreateRoomRequest(name=room_name("nogrant")).SerializeToString()
    resp = twirp_raw(corelay, "CreateRoom", body, jwt)
    assert_twirp_json(resp, "unauthenticated", 401)


def test_missing_room_list_grant(corelay: Corelay) -> None:
    jwt = token(api.VideoGrants(room_create=True))
    resp = twirp_raw(corelay, "ListRooms", api.ListRoomsRequest().SerializeToString(), jwt)
    assert_twirp_json(resp, "unauthenticated", 401)


def test_room_admin_for_other_room(corelay: Corelay) -> None:
    name = room_name("admin")
    create(corelay, name=name)
    jwt = token(api.VideoGrants(room_admin=True, room="some-other-room"))
    body = api.UpdateRoomMetadataRequest(room=name, metadata="x").SerializeToString()
    assert_twirp_json(twirp_raw(corelay, "UpdateRoomMetadata", body, jwt), "unauthenticated", 401)
    body = api.ListParticipantsRequest(room=name).SerializeToString()
    assert_twirp_json(twirp_raw(corelay, "ListParticipants", body, jwt), "unauthenticated", 401)
    # roomAdmin without any room at all
    jwt = token(api.VideoGrants(room_admin=True))
    assert_twirp_json(twirp_raw(corelay, "ListParticipants", body, jwt), "unauthenticated", 401)


# --- raw Twirp -----------------------------------------------------------------------


def test_raw_protobuf_success_content_type(corelay: Corelay) -> None:
    name = room_name("raw")
    resp = twirp_raw(corelay, "CreateRoom", api.CreateRoomRequest(name=name).SerializeToString(), service_token())
    assert resp.status == 200, resp
    assert (resp.headers.get("Content-Type") or "").split(";")[0].strip() == "application/protobuf", resp
    room = api.Room.FromString(resp.body)
    assert room.name == name and room.sid.startswith("RM_")


def test_malformed_protobuf_body(corelay: Corelay) -> None:
    # field 1 (name), length-delimited, claims 16 bytes but only 3 follow
    resp = twirp_raw(corelay, "CreateRoom", b"\x0a\x10abc", service_token())
    assert_twirp_json(resp, "malformed", 400)


def test_unknown_method_is_bad_route(corelay: Corelay) -> None:
    resp = twirp_raw(corelay, "Nope", b"", service_token())
    assert_twirp_json(resp, "bad_route", 404)


def test_oversized_body_rejected_and_server_survives(corelay: Corelay) -> None:
    u = urlparse(corelay.url)
    body = api.CreateRoomRequest(name=room_name("big"), metadata="x" * (2 * 1024 * 1024)).SerializeToString()
    assert len(body) > 2 * 1024 * 1024
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    send_error: Optional[BaseException] = None
    try:
        try:
            conn.request(
                "POST",
                TWIRP_PREFIX + "CreateRoom",
                body=body,
                headers={"Content-Type": "application/protobuf", "Authorization": f"Bearer {service_token()}"},
            )
        except (BrokenPipeError, ConnectionResetError) as e:
            # The server may answer and close before reading the whole body; the answer
            # should still be readable.
            send_error = e
        try:
            r = conn.getresponse()
            status, payload = r.status, r.read()
        except (ConnectionError, http.client.HTTPException) as e:
            pytest.fail(
                f"no HTTP response to a {len(body)}-byte request body "
                f"(send error: {send_error!r}; read error: {e!r})"
            )
    finally:
        conn.close()
    assert status == 413, f"expected 413 for a {len(body)}-byte body, got {status}: {payload[:300]!r}"

    # The server still answers, over HTTP and through the SDK.
    ok = http_req("GET", corelay.url + "/")
    assert ok.status == 200 and ok.body == b"OK", ok
    call(corelay, lambda lk: lk.room.list_rooms(api.ListRoomsRequest()))


# --- HTTP endpoints -----------------------------------------------------------------


def test_health(corelay: Corelay) -> None:
    resp = http_req("GET", corelay.url + "/")
    assert resp.status == 200, resp
    assert resp.body.strip() == b"OK", resp


def test_rtc_validate_join_token(corelay: Corelay) -> None:
    resp = http_req("GET", corelay.url + "/rtc/validate?access_token=" + quote(join_token()))
    assert resp.status == 200, resp
    assert resp.body.strip() == b"success", resp
    assert resp.headers.get("Access-Control-Allow-Origin") == "*", resp


def test_rtc_validate_garbage_token(corelay: Corelay) -> None:
    resp = http_req("GET", corelay.url + "/rtc/validate?access_token=not.a.jwt")
    assert resp.status == 401, resp
    assert resp.body, resp
    assert resp.headers.get("Access-Control-Allow-Origin") == "*", resp


def test_rtc_validate_wrong_secret(corelay: Corelay) -> None:
    bad = token(api.VideoGrants(room_join=True, room="r"), identity="alice", secret="not-the-secret")
    resp = http_req("GET", corelay.url + "/rtc/validate?access_token=" + quote(bad))
    assert resp.status == 401, resp


def test_rtc_validate_missing_token(corelay: Corelay) -> None:
    resp = http_req("GET", corelay.url + "/rtc/validate")
    assert resp.status == 401, resp


def test_rtc_paths_without_an_upgrade(corelay: Corelay) -> None:
    q = "?access_token=" + quote(join_token())
    for path in ("/rtc", "/rtc/v1"):
        resp = http_req("GET", corelay.url + path + q)
        assert resp.status == 404, (path, resp)
    # v1 validation needs the join_request, as LiveKit's.
    resp = http_req("GET", corelay.url + "/rtc/v1/validate" + q)
    assert resp.status == 400 and b"join_request" in resp.body, resp

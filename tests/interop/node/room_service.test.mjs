// RoomService interop tests: the official Node SDK (livekit-server-sdk) against corelay.
//
// The SDK speaks Twirp with `Content-Type: application/json;charset=UTF-8`
// (protobuf-es toJson: camelCase, int64 as strings, enum names) and throws
// `TwirpError` (= ServerError) with `.code` (Twirp code, only parsed when the
// error's Content-Type is exactly `application/json`) and `.status` (HTTP status).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { AccessToken, DataPacket_Kind, RoomServiceClient, TwirpError } from 'livekit-server-sdk';
import { startCorelay, API_KEY, API_SECRET } from './server.mjs';

const TWIRP_PREFIX = '/twirp/livekit.RoomService/';

let server;
let svc;

before(async () => {
  server = await startCorelay();
  svc = new RoomServiceClient(server.url, API_KEY, API_SECRET);
});

after(async () => {
  if (server) await server.stop();
});

// Append the server's logs to any failure.
function logged(fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (e) {
      if (server && e && typeof e === 'object' && typeof e.message === 'string') {
        e.message += `\n${server.logs()}`;
      }
      throw e;
    }
  };
}

const roomName = (tag) => `node-${tag}-${randomUUID().slice(0, 8)}`;

async function token(grant, { identity, secret = API_SECRET } = {}) {
  const at = new AccessToken(API_KEY, secret, { identity, ttl: '10m' });
  at.addGrant(grant);
  return at.toJwt();
}

/** POST a raw Twirp request; returns { status, contentType, text, json }. */
async function twirpRaw(method, body, { jwt, contentType = 'application/json' } = {}) {
  const headers = { 'Content-Type': contentType };
  if (jwt) headers.Authorization = `Bearer ${jwt}`;
  const res = await fetch(server.url + TWIRP_PREFIX + method, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type'), text, json };
}

function describeResp(r) {
  return `HTTP ${r.status} content-type=${r.contentType} body=${r.text.slice(0, 500)}`;
}

function assertTwirpJson(r, code, status) {
  assert.equal(r.status, status, describeResp(r));
  assert.equal(r.contentType, 'application/json', describeResp(r));
  assert.ok(r.json && typeof r.json === 'object', describeResp(r));
  assert.equal(r.json.code, code, describeResp(r));
  assert.equal(typeof r.json.msg, 'string', describeResp(r));
}

/** A Room field from a raw JSON reply, whichever naming the server used. */
function field(obj, snake) {
  const camel = snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  if (snake in obj) return obj[snake];
  if (camel in obj) return obj[camel];
  return undefined;
}

/** Assert that the promise rejects with a TwirpError carrying code/status. */
async function assertTwirpError(promise, code, status) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof TwirpError, `expected TwirpError, got ${err}`);
    assert.equal(err.code, code, `code: ${err.status} ${err.code} ${err.message}`);
    assert.equal(err.status, status, `status: ${err.status} ${err.code} ${err.message}`);
    return true;
  });
}

const serviceJwt = () => token({ roomCreate: true, roomList: true });

describe('RoomService via livekit-server-sdk (JSON)', () => {
  it(
    'creates a room',
    logged(async () => {
      const name = roomName('create');
      const before = Math.floor(Date.now() / 1000);
      const room = await svc.createRoom({ name, emptyTimeout: 42, maxParticipants: 3, metadata: 'meta' });
      const after = Math.floor(Date.now() / 1000);
      assert.match(room.sid, /^RM_.+/);
      assert.equal(room.name, name);
      assert.equal(room.emptyTimeout, 42);
      assert.equal(room.maxParticipants, 3);
      assert.equal(room.metadata, 'meta');
      assert.equal(room.numParticipants, 0);
      assert.equal(typeof room.creationTime, 'bigint');
      const created = Number(room.creationTime);
      assert.ok(created >= before - 5 && created <= after + 5, `creationTime ${created}`);
    }),
  );

  it(
    'applies default timeouts',
    logged(async () => {
      const room = await svc.createRoom({ name: roomName('defaults') });
      assert.equal(room.emptyTimeout, 300);
      assert.equal(room.departureTimeout, 20);
      assert.equal(room.maxParticipants, 0);
    }),
  );

  it(
    'returns the existing room for a repeated name',
    logged(async () => {
      const name = roomName('same');
      const a = await svc.createRoom({ name });
      const b = await svc.createRoom({ name, metadata: 'ignored?' });
      assert.equal(b.sid, a.sid);
      assert.equal(b.creationTime, a.creationTime);
    }),
  );

  it(
    'lists rooms, all and by name',
    logged(async () => {
      const a = await svc.createRoom({ name: roomName('list-a') });
      const b = await svc.createRoom({ name: roomName('list-b') });
      const all = await svc.listRooms();
      const names = all.map((r) => r.name);
      assert.ok(names.includes(a.name) && names.includes(b.name), `listRooms() = ${names}`);
      const filtered = await svc.listRooms([a.name, 'node-no-such-room']);
      assert.deepEqual(
        filtered.map((r) => [r.name, r.sid]),
        [[a.name, a.sid]],
      );
      assert.deepEqual(await svc.listRooms(['node-no-such-room']), []);
    }),
  );

  it(
    'updates room metadata',
    logged(async () => {
      const name = roomName('meta');
      const created = await svc.createRoom({ name, metadata: 'v1' });
      const updated = await svc.updateRoomMetadata(name, 'v2');
      assert.equal(updated.sid, created.sid);
      assert.equal(updated.metadata, 'v2');
      const [listed] = await svc.listRooms([name]);
      assert.equal(listed.metadata, 'v2');
    }),
  );

  it(
    'updateRoomMetadata on a missing room is not_found',
    logged(async () => {
      await assertTwirpError(svc.updateRoomMetadata(roomName('absent'), 'x'), 'not_found', 404);
    }),
  );

  it(
    'lists no participants in a fresh room',
    logged(async () => {
      const name = roomName('parts');
      await svc.createRoom({ name });
      assert.deepEqual(await svc.listParticipants(name), []);
    }),
  );

  it(
    'participant calls for an unknown identity are not_found',
    logged(async () => {
      const name = roomName('ident');
      await svc.createRoom({ name });
      await assertTwirpError(svc.getParticipant(name, 'nobody'), 'not_found', 404);
      await assertTwirpError(svc.removeParticipant(name, 'nobody'), 'not_found', 404);
      await assertTwirpError(svc.updateParticipant(name, 'nobody', { metadata: 'm' }), 'not_found', 404);
      await assertTwirpError(svc.mutePublishedTrack(name, 'nobody', 'TR_x', true), 'not_found', 404);
      await assertTwirpError(svc.updateSubscriptions(name, 'nobody', ['TR_x'], true), 'not_found', 404);
    }),
  );

  it(
    'participant calls on a missing room are not_found',
    logged(async () => {
      const name = roomName('noroom');
      await assertTwirpError(svc.listParticipants(name), 'not_found', 404);
      await assertTwirpError(svc.getParticipant(name, 'nobody'), 'not_found', 404);
      await assertTwirpError(
        svc.sendData(name, new TextEncoder().encode('hi'), DataPacket_Kind.RELIABLE),
        'not_found',
        404,
      );
    }),
  );

  it(
    'sends data to an empty room',
    logged(async () => {
      const name = roomName('data');
      await svc.createRoom({ name });
      // LOSSY is serialized as the enum name "LOSSY"; RELIABLE (0) is omitted.
      await svc.sendData(name, new TextEncoder().encode('hi'), DataPacket_Kind.LOSSY, { topic: 't' });
      await svc.sendData(name, new TextEncoder().encode('hi'), DataPacket_Kind.RELIABLE, {
        destinationIdentities: ['nobody'],
      });
    }),
  );

  it(
    'deletes a room; deleting again is not_found',
    logged(async () => {
      const name = roomName('delete');
      await svc.createRoom({ name });
      await svc.deleteRoom(name);
      assert.deepEqual(await svc.listRooms([name]), []);
      await assertTwirpError(svc.deleteRoom(name), 'not_found', 404);
    }),
  );

  it(
    'rejects a wrong secret with 401',
    logged(async () => {
      const bad = new RoomServiceClient(server.url, API_KEY, 'not-the-secret');
      await assert.rejects(bad.listRooms(), (err) => {
        assert.ok(err instanceof TwirpError, `expected TwirpError, got ${err}`);
        assert.equal(err.status, 401, `${err.status} ${err.code} ${err.message}`);
        return true;
      });
    }),
  );

  it(
    'rejects a token without roomCreate as unauthenticated',
    logged(async () => {
      const jwt = await token({ roomJoin: true, room: 'x' }, { identity: 'alice' });
      assertTwirpJson(await twirpRaw('CreateRoom', { name: roomName('nogrant') }, { jwt }), 'unauthenticated', 401);
    }),
  );

  it(
    'rejects roomAdmin for another room as unauthenticated',
    logged(async () => {
      const name = roomName('admin');
      await svc.createRoom({ name });
      const jwt = await token({ roomAdmin: true, room: 'some-other-room' });
      assertTwirpJson(
        await twirpRaw('UpdateRoomMetadata', { room: name, metadata: 'x' }, { jwt }),
        'unauthenticated',
        401,
      );
    }),
  );
});

describe('RoomService raw JSON', () => {
  it(
    'replies JSON to a JSON request, with the expected field values',
    logged(async () => {
      const name = roomName('rawjson');
      const r = await twirpRaw(
        'CreateRoom',
        { name, emptyTimeout: 11, maxParticipants: 4, metadata: 'mm' },
        { jwt: await serviceJwt(), contentType: 'application/json;charset=UTF-8' },
      );
      assert.equal(r.status, 200, describeResp(r));
      assert.match(r.contentType ?? '', /^application\/json\b/, describeResp(r));
      assert.ok(r.json, describeResp(r));
      assert.match(field(r.json, 'sid'), /^RM_.+/, describeResp(r));
      assert.equal(field(r.json, 'name'), name, describeResp(r));
      assert.equal(field(r.json, 'empty_timeout'), 11, describeResp(r));
      assert.equal(field(r.json, 'max_participants'), 4, describeResp(r));
      assert.equal(field(r.json, 'metadata'), 'mm', describeResp(r));
      assert.equal(Number(field(r.json, 'departure_timeout') ?? 0), 20, describeResp(r));
      // int64 creation_time: a JSON string (protojson) or number; either parses.
      const ct = Number(field(r.json, 'creation_time'));
      assert.ok(Number.isFinite(ct) && ct > 1_600_000_000, describeResp(r));
    }),
  );

  it(
    'rejects malformed JSON with 400 malformed',
    logged(async () => {
      const r = await twirpRaw('CreateRoom', '{"name": "x", ', { jwt: await serviceJwt() });
      assertTwirpJson(r, 'malformed', 400);
    }),
  );

  it(
    'rejects a JSON body of the wrong type with 400 malformed',
    logged(async () => {
      const r = await twirpRaw('CreateRoom', '{"name": 5, "emptyTimeout": "soon"}', { jwt: await serviceJwt() });
      assertTwirpJson(r, 'malformed', 400);
    }),
  );

  it(
    'accepts camelCase and snake_case field names',
    logged(async () => {
      const jwt = await serviceJwt();
      const a = roomName('camel');
      const b = roomName('snake');
      const ra = await twirpRaw('CreateRoom', { name: a, emptyTimeout: 5 }, { jwt });
      const rb = await twirpRaw('CreateRoom', { name: b, empty_timeout: 5 }, { jwt });
      assert.equal(ra.status, 200, describeResp(ra));
      assert.equal(rb.status, 200, describeResp(rb));
      assert.equal(field(ra.json, 'empty_timeout'), 5, describeResp(ra));
      assert.equal(field(rb.json, 'empty_timeout'), 5, describeResp(rb));
      // and through the SDK's reader
      const listed = await svc.listRooms([a, b]);
      assert.deepEqual(
        listed.map((r) => r.emptyTimeout),
        [5, 5],
      );
    }),
  );

  it(
    'ignores unknown JSON fields',
    logged(async () => {
      const name = roomName('unknown');
      const r = await twirpRaw(
        'CreateRoom',
        { name, someUnknownField: 1, another_unknown: { nested: [1, 2, 3] }, maxParticipants: 2 },
        { jwt: await serviceJwt() },
      );
      assert.equal(r.status, 200, describeResp(r));
      assert.equal(field(r.json, 'name'), name, describeResp(r));
      assert.equal(field(r.json, 'max_participants'), 2, describeResp(r));
    }),
  );

  it(
    'accepts enum names and numbers',
    logged(async () => {
      const name = roomName('enum');
      await svc.createRoom({ name });
      const jwt = await token({ roomAdmin: true, room: name });
      const data = Buffer.from('hi').toString('base64');
      for (const kind of ['LOSSY', 1, 'RELIABLE', 0]) {
        const r = await twirpRaw('SendData', { room: name, data, kind }, { jwt });
        assert.equal(r.status, 200, `kind=${JSON.stringify(kind)}: ${describeResp(r)}`);
      }
    }),
  );

  it(
    'answers an unknown method with 404 bad_route',
    logged(async () => {
      assertTwirpJson(await twirpRaw('Nope', {}, { jwt: await serviceJwt() }), 'bad_route', 404);
    }),
  );
});

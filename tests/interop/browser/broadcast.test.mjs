// Browser interop, rooms that span shards (broadcast): the official livekit-client
// JS SDK in headless Chromium against a corelay with three shards and
// `spread_after = 1`, so the room's three participants land on three shards (the join
// log says where).
//
//   pub publishes a 1280x720 simulcast camera and its microphone; low (on another
//   shard) asks for VideoQuality.LOW and high (on a third) for HIGH: low decodes a
//   smaller frameWidth than high, both keep decoding (keyframes asked across shards,
//   dynacast counting subscribers of every shard). pub hears low's microphone; data
//   goes both ways; each sees the others speak and gets their connection quality.
//
// Run: node --test tests/interop/browser/   (after `npm ci` in this folder and
// `cargo build --bin corelay`; CORELAY_BIN, CHROMIUM_BIN, LK_LOG_LEVEL as in
// browser.test.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { REPO_ROOT, startCorelay } from './corelay.mjs';
import { SIMULCAST_CAMERA, expectFramesRising, joinPages, startBrowser, videoFrom, waitFor, withDiagnostics } from './harness.mjs';

const TEST_TIMEOUT_MS = 180_000;
const LAYER_WAIT_MS = 30_000;

let env;

before(async () => {
  env = await startBrowser();
});

after(async () => {
  await env?.close();
});

/** A core-affinity file for `shards` shards that spread a room from its second join. */
function affinityFile(shards) {
  const dir = path.join(REPO_ROOT, 'target', 'interop');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `broadcast-affinity-${process.pid}.toml`);
  writeFileSync(file, `control_core = 0\nshard_cores = []\nshards = ${shards}\nspread_after = 1\n`);
  return file;
}

/** identity -> shard of each join in `room`, from the server's log. */
function joinedShards(log, room) {
  const shards = {};
  const re = new RegExp(`participant joined conn=\\d+ room=${room} identity=(\\S+) shard=(\\d+)`, 'g');
  for (const m of log.matchAll(re)) shards[m[1]] = Number(m[2]);
  return shards;
}

describe('a room across shards with livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  test('participants on three shards see, hear, message and rate each other', { timeout: TEST_TIMEOUT_MS }, async () => {
    const ROOM = 'broadcast-browser';
    const ctx = { pages: [], server: await startCorelay({}, ['--core-affinity', affinityFile(3)]) };
    try {
      await withDiagnostics(ctx, async () => {
        const { pub, low, high } = await joinPages(env, ctx, ROOM, ['pub', 'low', 'high']);
        const shards = joinedShards(ctx.server.fullLog(), ROOM);
        assert.equal(new Set(Object.values(shards)).size, 3, `three shards: ${JSON.stringify(shards)}`);

        await pub.publishCamera(SIMULCAST_CAMERA);
        await pub.publish({ mic: true });
        await low.publish({ mic: true });
        for (const viewer of [low, high]) {
          await waitFor(`${viewer.name} to play pub's video`, async () => {
            const v = videoFrom(await viewer.stats(), 'pub');
            return { ok: v?.videoWidth > 0, info: v };
          });
        }
        await low.setVideoQuality('pub', 'LOW');
        await high.setVideoQuality('pub', 'HIGH');
        await waitFor(
          'the LOW subscriber to decode a smaller frameWidth than the HIGH one',
          async () => {
            const l = videoFrom(await low.stats(), 'pub');
            const h = videoFrom(await high.stats(), 'pub');
            return { ok: l?.frameWidth > 0 && h?.frameWidth > 0 && l.frameWidth < h.frameWidth, info: { l, h } };
          },
          LAYER_WAIT_MS,
          500,
        );
        await Promise.all([expectFramesRising(low, 'pub'), expectFramesRising(high, 'pub')]);

        // pub hears low's microphone from the other shard.
        await waitFor("pub to receive low's audio", async () => {
          const a = (await pub.stats()).audios.find((x) => x.identity === 'low');
          return { ok: a?.totalSamplesReceived > 0 && a.packetsReceived > 10, info: a };
        });

        await low.sendData('from low', 'bc');
        await pub.sendData('from pub', 'bc');
        const got = (page, from, text) =>
          waitFor(`${page.name} to get "${text}" from ${from}`, async () => {
            const s = await page.session();
            return { ok: s.data.some((d) => d.from === from && d.text === text && d.topic === 'bc'), info: s.data };
          });
        await Promise.all([got(pub, 'low', 'from low'), got(high, 'low', 'from low'), got(low, 'pub', 'from pub')]);

        // Chromium's fake microphone beeps: each sees the other speak, and scores
        // arrive every few seconds.
        const sees = (page, what, ok) =>
          waitFor(`${page.name} to see ${what}`, async () => {
            const s = await page.session();
            return { ok: ok(s), info: { speakers: s.speakers, quality: s.quality } };
          });
        await Promise.all([
          sees(low, 'pub speaking', (s) => s.speakers.includes('pub')),
          sees(pub, 'low speaking', (s) => s.speakers.includes('low')),
          sees(high, 'pub speaking', (s) => s.speakers.includes('pub')),
          sees(low, "pub's connection quality", (s) => ['excellent', 'good'].includes(s.quality.pub)),
          sees(pub, "low's connection quality", (s) => ['excellent', 'good'].includes(s.quality.low)),
        ]);
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
});

// Browser interop, VP9 SVC (issue 5, "SVC"): the official livekit-client JS SDK in
// headless Chromium publishes its fake 1280x720 camera as one VP9 stream with three
// spatial layers (L3T3_KEY); one subscriber asks for VideoQuality.LOW, another for
// HIGH. The SFU forwards only the spatial layers each asked for, so the decoded
// frameWidth differ (low < high) and both keep decoding. A third subscriber asks for
// HIGH at 5 fps: it decodes full size at a fraction of the frame rate (temporal
// layers dropped).
//
// Run: node --test tests/interop/browser/   (see simulcast.test.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { startCorelay } from './corelay.mjs';
import { briefVideo as brief, expectFramesRising, expectReducedRate, joinPages, startBrowser, videoFrom, waitFor, withDiagnostics } from './harness.mjs';

const TEST_TIMEOUT_MS = 180_000;
const LAYER_WAIT_MS = 30_000;
const CAMERA = { resolution: 'h720', videoCodec: 'vp9', scalabilityMode: 'L3T3_KEY', backupCodec: false };

let env;

before(async () => {
  env = await startBrowser();
});

after(async () => {
  await env?.close();
});

describe('VP9 SVC with livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  test('subscribers asking LOW and HIGH decode different spatial layers of one VP9 stream', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = 'svc-a';
    const ctx = { pages: [], server: await startCorelay() };
    const timeline = [];
    ctx.extra = () => `--- timeline ---\n` + timeline.map((x) => JSON.stringify(x)).join('\n');
    try {
      await withDiagnostics(ctx, async () => {
        const { pub, low, high, slow } = await joinPages(env, ctx, ROOM, ['pub', 'low', 'high', 'slow'], ['low', 'high', 'slow', 'pub']);
        const published = await pub.publishCamera(CAMERA);
        assert.ok(published.sid, `pub published no camera track: ${JSON.stringify(published)}`);
        for (const viewer of [low, high, slow]) {
          await waitFor(`${viewer.name} to play pub's video`, async () => {
            const v = videoFrom(await viewer.stats(), 'pub');
            return { ok: v && v.videoWidth > 0, info: brief(v) };
          });
        }
        const requestedAt = Date.now();
        await low.setVideoQuality('pub', 'LOW');
        await high.setVideoQuality('pub', 'HIGH');
        await slow.setVideoQuality('pub', 'HIGH');
        await slow.setVideoFPS('pub', 5);
        const differ = await waitFor(
          'the LOW subscriber to decode a smaller frameWidth than the HIGH subscriber',
          async () => {
            const l = videoFrom(await low.stats(), 'pub');
            const h = videoFrom(await high.stats(), 'pub');
            const row = { ms: Date.now() - requestedAt, low: brief(l), high: brief(h) };
            timeline.push(row);
            const ok = l?.frameWidth > 0 && h?.frameWidth > 0 && l.frameWidth < h.frameWidth;
            return { ok, info: row, row };
          },
          LAYER_WAIT_MS,
          500,
        );
        assert.match(differ.row.low.codec ?? '', /vp9/i, 'the subscribers decode VP9');
        const [lowRun, highRun] = await Promise.all([
          expectFramesRising(low, 'pub'),
          expectFramesRising(high, 'pub'),
        ]);
        assert.ok(lowRun.s2.frameWidth < highRun.s2.frameWidth, 'LOW stays below HIGH');
        // The 5 fps subscriber: full size, well under the full rate (and not frozen).
        const slowRun = await expectReducedRate(slow, high, 'pub', highRun.fps, { windowMs: 2_000, waitMs: 20_000 });
        t.diagnostic(
          `svc ${JSON.stringify({ published, differMs: differ.row.ms, low: { ...brief(lowRun.s2), fps: lowRun.fps }, high: { ...brief(highRun.s2), fps: highRun.fps }, slow: { ...brief(slowRun.s2), fps: slowRun.fps } })}`,
        );
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
});

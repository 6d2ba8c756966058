// Browser interop, end-to-end encryption (issue 15, "E2EE audio is broken by RED"):
// livekit-client in headless Chromium with the SDK's E2EE worker and an
// ExternalE2EEKeyProvider. The publisher's audio track is published with disable_red,
// so the server's answer must put plain Opus first: RED's wrapper would be encrypted
// with the frame, and the SFU could neither read nor strip it. A subscriber holding
// the right key receives audio packets at the publisher's rate and decrypts every
// frame; one holding a wrong key decodes no video.
//
// Run: node --test tests/interop/browser/   (see simulcast.test.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startCorelay } from './corelay.mjs';
import { expectFramesRising, startBrowser, token, videoFrom, waitFor, withDiagnostics, wsUrl } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const KEY = 'corelay-e2ee-test-key';
// Opus from Chrome: one packet per 20 ms.
const OPUS_PPS = 50;
const WINDOW_MS = 3_000;

let env;

before(async () => {
  env = await startBrowser();
});

after(async () => {
  await env?.close();
});

describe('E2EE with livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  test('encrypted audio flows at the publisher rate and decrypts; a wrong key decodes no video', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = 'e2ee-a';
    const ctx = { pages: [], server: await startCorelay() };
    try {
      await withDiagnostics(ctx, async () => {
        const names = ['good', 'wrong', 'pub'];
        const pages = {};
        for (const name of names) {
          pages[name] = await env.openPage(name);
          ctx.pages.push(pages[name]);
        }
        const { good, wrong, pub } = pages;
        const url = wsUrl(ctx.server);
        await good.connectE2EE(url, await token('good', ROOM), KEY);
        await wrong.connectE2EE(url, await token('wrong', ROOM), 'not-the-key');
        await pub.connectE2EE(url, await token('pub', ROOM), KEY);
        const pubs = await pub.publish({ camera: true, mic: true });
        assert.deepEqual(pubs.map((p) => p.kind).sort(), ['audio', 'video'], JSON.stringify(pubs));

        // The right key: video decodes, delta frames included.
        await waitFor('good to play pub\'s video', async () => {
          const v = videoFrom(await good.stats(), 'pub');
          return { ok: v && v.framesDecoded > 0, info: v };
        });
        const video = await expectFramesRising(good, 'pub');

        // Audio: packets at the publisher's rate, as plain Opus, with no decryption error.
        const audioFrom = async (p) => (await p.stats()).audios.find((a) => a.identity === 'pub');
        await waitFor('good to receive pub\'s audio', async () => {
          const a = await audioFrom(good);
          return { ok: a && a.packetsReceived > 0, info: a };
        });
        const a1 = await audioFrom(good);
        await sleep(WINDOW_MS);
        const a2 = await audioFrom(good);
        const pps = ((a2.packetsReceived - a1.packetsReceived) * 1000) / WINDOW_MS;
        assert.ok(pps >= OPUS_PPS * 0.8, `good received ${pps.toFixed(1)} audio packets/s: ${JSON.stringify({ a1, a2 })}`);
        assert.equal(a2.codec, 'audio/opus', `audio on the wire: ${JSON.stringify(a2)}`);
        const received = a2.totalSamplesReceived - a1.totalSamplesReceived;
        const concealed = a2.concealedSamples - a1.concealedSamples;
        assert.ok(concealed < received / 2, `most audio was concealment: ${JSON.stringify({ a1, a2 })}`);
        const goodStats = await good.stats();
        assert.equal(goodStats.e2ee, true);
        assert.equal(goodStats.encryptionErrors, 0, 'the right key decrypts every frame');

        // The wrong key: nothing of pub's video is decoded.
        const w = videoFrom(await wrong.stats(), 'pub');
        assert.ok(!w || !w.framesDecoded, `wrong key decoded video: ${JSON.stringify(w)}`);

        const log = ctx.server.fullLog();
        assert.ok(!/malformed RED payload/.test(log), 'the server parsed an encrypted RED payload');
        t.diagnostic(`e2ee ${JSON.stringify({ videoFps: video.fps, audioPps: +pps.toFixed(1), codec: a2.codec, received, concealed })}`);
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
});

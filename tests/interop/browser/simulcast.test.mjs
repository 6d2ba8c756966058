// Browser interop, simulcast layers and pause (issue 5, "Done when" #1): the official
// livekit-client JS SDK in headless Chromium against a real corelay.
//
//   a. a browser publishes its (fake, 1280x720) camera with three simulcast layers;
//      one subscriber asks for VideoQuality.LOW, another for HIGH: their decoded
//      frameWidth differ (low < high), and both keep decoding; a third asks for HIGH
//      at 5 fps and decodes full size at well under the full rate (VP8 temporal layers);
//   b. a subscriber disables the track (setEnabled(false)): no video packets reach it
//      while a second subscriber keeps decoding; re-enabled, it decodes again,
//      starting with a new keyframe.
//
// Run: node --test tests/interop/browser/   (after `npm ci` in this folder and
// `cargo build --bin corelay`; CORELAY_BIN, CHROMIUM_BIN, LK_LOG_LEVEL as in
// browser.test.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { startCorelay } from './corelay.mjs';
import { SIMULCAST_CAMERA, briefVideo as brief, expectFramesRising, expectReducedRate, joinPages, startBrowser, videoFrom, waitFor, withDiagnostics } from './harness.mjs';

const TEST_TIMEOUT_MS = 240_000;
const LAYER_WAIT_MS = 30_000; // for the two subscribers' resolutions to differ
const PAUSE_SETTLE_MS = 1_500; // packets in flight when the track is disabled
const PAUSE_WATCH_MS = 4_000; // then no packet may arrive for this long
const RESUME_WAIT_MS = 15_000;
const STEADY_WINDOW_MS = 2_000; // frames must rise at >= 5 fps over one such window
const STEADY_WAIT_MS = 15_000; // ... starting within this long


let env;

before(async () => {
  env = await startBrowser();
});

after(async () => {
  await env?.close();
});

/** Waits until `viewer` plays a video from `from` (videoWidth > 0); returns ms since `since`. */
async function waitForVideo(viewer, from, since) {
  await waitFor(`${viewer.name} to play a video from ${from} (videoWidth > 0)`, async () => {
    const s = await viewer.stats();
    const v = videoFrom(s, from);
    return { ok: v && v.videoWidth > 0, info: s };
  });
  return Date.now() - since;
}

const briefLayers = (pl) =>
  pl && {
    availableOutgoingBitrate: pl.pair?.availableOutgoingBitrate ?? null,
    layers: pl.layers.map((l) => ({
      rid: l.rid,
      frameWidth: l.frameWidth,
      bytesSent: l.bytesSent,
      framesEncoded: l.framesEncoded,
      targetBitrate: l.targetBitrate,
      qualityLimitationReason: l.qualityLimitationReason,
      active: l.active,
    })),
  };

describe('simulcast with livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  test('subscribers asking LOW and HIGH quality decode different resolutions', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = 'simulcast-a';
    const ctx = { pages: [], server: await startCorelay() };
    const timeline = []; // every poll while waiting for the widths to differ
    ctx.extra = () =>
      `--- timeline (ms since the quality requests: low, high, publisher layers) ---\n` +
      timeline.map((x) => JSON.stringify(x)).join('\n');
    try {
      await withDiagnostics(ctx, async () => {
        const { pub, low, high, slow } = await joinPages(env, ctx, ROOM, ['pub', 'low', 'high', 'slow'], ['low', 'high', 'slow', 'pub']);
        const publishedAt = Date.now();
        const published = await pub.publishCamera(SIMULCAST_CAMERA);
        assert.ok(published.sid, `pub published no camera track: ${JSON.stringify(published)}`);

        const lowFirstMs = await waitForVideo(low, 'pub', publishedAt);
        const highFirstMs = await waitForVideo(high, 'pub', publishedAt);
        await waitForVideo(slow, 'pub', publishedAt);

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
            const layers = briefLayers(await pub.publisherLayers());
            const row = { ms: Date.now() - requestedAt, low: brief(l), high: brief(h), pub: layers };
            timeline.push(row);
            const ok = l?.frameWidth > 0 && h?.frameWidth > 0 && l.frameWidth < h.frameWidth;
            return { ok, info: row, row };
          },
          LAYER_WAIT_MS,
          500,
        );

        // Both keep decoding (delta frames too) at their own resolution. A layer that
        // has only just started may stutter: a steady window must come within STEADY_WAIT_MS.
        const steadyFrom = Date.now();
        const unsteady = [];
        let lowRun;
        let highRun;
        for (;;) {
          try {
            [lowRun, highRun] = await Promise.all([
              expectFramesRising(low, 'pub', STEADY_WINDOW_MS),
              expectFramesRising(high, 'pub', STEADY_WINDOW_MS),
            ]);
            break;
          } catch (e) {
            const row = { ms: Date.now() - requestedAt, unsteady: e.message.slice(0, 600) };
            timeline.push(row);
            unsteady.push(row);
            if (Date.now() - steadyFrom > STEADY_WAIT_MS) throw e;
          }
        }
        assert.ok(
          lowRun.s2.frameWidth < highRun.s2.frameWidth,
          `after decoding on, LOW frameWidth ${lowRun.s2.frameWidth} is no longer below HIGH ` +
            `${highRun.s2.frameWidth}: ${JSON.stringify(lowRun.s2)} / ${JSON.stringify(highRun.s2)}`,
        );
        // The 5 fps subscriber: full size, well under the full rate (and not frozen).
        const slowRun = await expectReducedRate(slow, high, 'pub', highRun.fps, { windowMs: STEADY_WINDOW_MS, waitMs: STEADY_WAIT_MS });
        const layers = await pub.publisherLayers();

        // Each change of (low width, high width, layers the publisher sends) while waiting.
        const changes = [];
        for (const row of timeline) {
          if (!row.low) continue;
          const sent = (row.pub?.layers ?? []).filter((l) => l.framesEncoded > 0).map((l) => `${l.rid}:${l.frameWidth}`);
          const key = { low: row.low?.frameWidth ?? null, high: row.high?.frameWidth ?? null, sent: sent.join(' ') };
          const prev = changes[changes.length - 1];
          if (!prev || prev.low !== key.low || prev.high !== key.high || prev.sent !== key.sent) {
            changes.push({ ms: row.ms, ...key, availableOutgoingBitrate: row.pub?.availableOutgoingBitrate ?? null });
          }
        }
        const report = {
          widthChanges: changes,
          published,
          firstFrameMs: { low: lowFirstMs, high: highFirstMs },
          differMs: differ.row.ms,
          unsteadyWindows: unsteady,
          low: { ...brief(lowRun.s2), fps: lowRun.fps },
          high: { ...brief(highRun.s2), fps: highRun.fps },
          slow: { ...brief(slowRun.s2), fps: slowRun.fps },
          publisher: briefLayers(layers),
        };
        t.diagnostic(`low/high ${JSON.stringify(report)}`);
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });

  test('a disabled track gets no video packets and resumes with a keyframe', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = 'simulcast-b';
    const ctx = { pages: [], server: await startCorelay() };
    const timeline = []; // viewer and control while paused and resuming
    ctx.extra = () =>
      `--- timeline (ms since setEnabled(false)) ---\n` + timeline.map((x) => JSON.stringify(x)).join('\n');
    try {
      await withDiagnostics(ctx, async () => {
        const { pub, viewer, control } = await joinPages(env, ctx, ROOM, ['pub', 'viewer', 'control'], ['viewer', 'control', 'pub']);
        const publishedAt = Date.now();
        const published = await pub.publishCamera(SIMULCAST_CAMERA);
        assert.ok(published.sid, `pub published no camera track: ${JSON.stringify(published)}`);
        await waitForVideo(viewer, 'pub', publishedAt);
        await waitForVideo(control, 'pub', publishedAt);
        await expectFramesRising(viewer, 'pub');

        const sample = async (label, offAt) => {
          const v = videoFrom(await viewer.stats(), 'pub');
          const c = videoFrom(await control.stats(), 'pub');
          const row = { label, ms: Date.now() - offAt, viewer: brief(v), control: brief(c) };
          timeline.push(row);
          return row;
        };

        // --- pause ---
        const offAt = Date.now();
        const before = await sample('before setEnabled(false)', offAt);
        await viewer.setEnabled('pub', false);
        await sleep(PAUSE_SETTLE_MS);
        const settled = await sample('settled', offAt);
        // Watch at 500 ms steps: the packet counter must not move at all.
        while (Date.now() - offAt < PAUSE_SETTLE_MS + PAUSE_WATCH_MS) {
          await sleep(500);
          await sample('paused', offAt);
        }
        const paused = timeline[timeline.length - 1];
        const d = (k) => paused.viewer[k] - settled.viewer[k];
        const pausedPackets = d('packetsReceived');
        const pausedRtx = d('retransmittedPacketsReceived');
        const pausedMediaPackets = pausedPackets - pausedRtx;
        const pausedWire = {
          packets: pausedPackets,
          retransmittedPackets: pausedRtx,
          payloadBytes: d('bytesReceived'),
          retransmittedBytes: d('retransmittedBytesReceived'),
          headerAndPaddingBytes: d('headerBytesReceived'),
        };
        const pausedWhat =
          `in the ${PAUSE_WATCH_MS} ms after its track had been disabled for ${PAUSE_SETTLE_MS} ms ` +
          `(${JSON.stringify(pausedWire)}): ${JSON.stringify(settled.viewer)} -> ${JSON.stringify(paused.viewer)}`;
        // Media first: no frame, no payload byte, no packet on the media SSRC itself.
        assert.equal(pausedWire.payloadBytes, 0, `viewer received video payload ${pausedWhat}`);
        assert.equal(
          paused.viewer.framesDecoded,
          settled.viewer.framesDecoded,
          `viewer decoded frames ${pausedWhat}`,
        );
        assert.equal(pausedMediaPackets, 0, `viewer received ${pausedMediaPackets} non-RTX video packets ${pausedWhat}`);
        // The pause is the viewer's own: the control subscriber kept decoding.
        assert.ok(
          paused.control.framesDecoded > settled.control.framesDecoded,
          `control stopped decoding while only the viewer had disabled the track: ` +
            `${JSON.stringify(settled.control)} -> ${JSON.stringify(paused.control)}`,
        );

        // --- resume ---
        const onAt = Date.now();
        await viewer.setEnabled('pub', true);
        const resumed = await waitFor(
          'the re-enabled viewer to decode a new keyframe and further frames',
          async () => {
            const row = await sample('resuming', offAt);
            const v = row.viewer;
            const ok =
              v.framesDecoded > paused.viewer.framesDecoded && v.keyFramesDecoded > paused.viewer.keyFramesDecoded;
            return { ok, info: row, row };
          },
          RESUME_WAIT_MS,
        );
        const resumeMs = Date.now() - onAt;
        const run = await expectFramesRising(viewer, 'pub');

        const report = {
          published: { sid: published.sid, capture: published.capture, layers: published.layers.length },
          packetsInFlightAfterDisable: settled.viewer.packetsReceived - before.viewer.packetsReceived,
          pausedWatchMs: paused.ms - settled.ms,
          pausedWire,
          controlFramesWhilePaused: paused.control.framesDecoded - settled.control.framesDecoded,
          resumeMs,
          keyFramesDecoded: [paused.viewer.keyFramesDecoded, resumed.row.viewer.keyFramesDecoded],
          afterResume: { ...brief(run.s2), fps: run.fps },
        };
        t.diagnostic(`pause/resume ${JSON.stringify(report)}`);
        // "Receives no video packets": padding and probes on the paused track's RTX
        // SSRC count too (Chrome adds them to the track's inbound-rtp packetsReceived
        // as retransmittedPacketsReceived with no payload bytes).
        assert.equal(
          pausedPackets,
          0,
          `viewer received ${pausedPackets} video packets, ${pausedRtx} of them RTX ` +
            `(padding/probes: ${pausedWire.retransmittedBytes} retransmitted payload bytes, ` +
            `${pausedWire.headerAndPaddingBytes} header+padding bytes) ${pausedWhat}`,
        );
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
});

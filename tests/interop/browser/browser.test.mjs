// Browser interop: the official livekit-client JS SDK in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core) against a real corelay.
//
//   a. two browsers: one publishes camera+mic, the other decodes the video;
//   b. a browser and a Python livekit rtc participant (py_peer.py) decode each
//      other's video;
//   c. reliable data from one browser reaches the other.
//
// Run: node --test tests/interop/browser/   (after `npm ci` in this folder and
// `cargo build --bin corelay`; CORELAY_BIN overrides the binary, CHROMIUM_BIN
// the browser, LK_LOG_LEVEL the SDK log level in the page, default "debug").
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { REPO_ROOT, startCorelay } from './corelay.mjs';
import { WAIT_MS, expectSignalPaths, startBrowser, token, waitFor, withDiagnostics, wsUrl } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = path.join(REPO_ROOT, 'target', 'interop', 'venv', 'bin', 'python');
const PY_PEER = path.join(HERE, 'py_peer.py');

const TEST_TIMEOUT_MS = 180_000;
const SAMPLE_GAP_MS = 2_000; // between the two frame-count samples (>= 1 s)
// Both sources send 20-30 fps; a forwarder that passes only keyframes gives ~2.
const MIN_DECODED_FPS = 5;
const PY_WANT_FRAMES = 20;

let env;
const openPage = (name) => env.openPage(name);

/**
 * Waits until `viewer` has a playing video from `fromIdentity` (videoWidth > 0)
 * and then requires its frame counters to rise over SAMPLE_GAP_MS. Returns numbers.
 */
async function expectDecodedVideo(viewer, fromIdentity, startedAt) {
  const pick = (s) => s.videos.find((v) => v.identity === fromIdentity);
  const first = await waitFor(`${viewer.name} to play a video from ${fromIdentity} (videoWidth > 0)`, async () => {
    const s = await viewer.stats();
    const v = pick(s);
    return { ok: v && v.videoWidth > 0, info: s, v };
  });
  const firstFrameMs = Date.now() - startedAt;
  // Two samples at least 1 s apart: frames must keep arriving.
  const s1 = pick(await viewer.stats());
  await sleep(SAMPLE_GAP_MS);
  const s2 = pick(await viewer.stats());
  assert.ok(s2, `${viewer.name}: video from ${fromIdentity} disappeared: ${JSON.stringify(s1)}`);
  assert.ok(
    s2.totalVideoFrames > s1.totalVideoFrames,
    `${viewer.name}: totalVideoFrames of ${fromIdentity}'s video did not rise over ${SAMPLE_GAP_MS} ms: ` +
      `${s1.totalVideoFrames} -> ${s2.totalVideoFrames} (${JSON.stringify(s2)})`,
  );
  assert.ok(
    s2.framesDecoded > s1.framesDecoded,
    `${viewer.name}: inbound-rtp framesDecoded of ${fromIdentity}'s video did not rise over ${SAMPLE_GAP_MS} ms: ` +
      `${s1.framesDecoded} -> ${s2.framesDecoded} (${JSON.stringify(s2)})`,
  );
  // Delta frames must get through too, not only keyframes.
  assert.ok(
    s2.framesDecoded - s2.keyFramesDecoded > s1.framesDecoded - s1.keyFramesDecoded,
    `${viewer.name}: only keyframes of ${fromIdentity}'s video were decoded over ${SAMPLE_GAP_MS} ms ` +
      `(framesDecoded ${s1.framesDecoded} -> ${s2.framesDecoded}, keyFramesDecoded ` +
      `${s1.keyFramesDecoded} -> ${s2.keyFramesDecoded}): delta frames are not arriving (${JSON.stringify(s2)})`,
  );
  const fps = ((s2.framesDecoded - s1.framesDecoded) * 1000) / SAMPLE_GAP_MS;
  assert.ok(
    fps >= MIN_DECODED_FPS,
    `${viewer.name}: decoded ${fps.toFixed(1)} fps of ${fromIdentity}'s video over ${SAMPLE_GAP_MS} ms ` +
      `(want >= ${MIN_DECODED_FPS}): ${JSON.stringify(s1)} -> ${JSON.stringify(s2)}`,
  );
  return {
    firstFrameMs,
    width: first.v.videoWidth,
    height: first.v.videoHeight,
    codec: s2.codec,
    totalVideoFrames: [s1.totalVideoFrames, s2.totalVideoFrames],
    framesDecoded: [s1.framesDecoded, s2.framesDecoded],
    keyFramesDecoded: [s1.keyFramesDecoded, s2.keyFramesDecoded],
    fpsDecoded: +fps.toFixed(1),
    packetsReceived: s2.packetsReceived,
    retransmittedPacketsReceived: s2.retransmittedPacketsReceived,
    nackCount: s2.nackCount,
    pliCount: s2.pliCount,
  };
}

before(async () => {
  env = await startBrowser();
});

after(async () => {
  await env?.close();
});

describe('livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  // The SDK's default (/rtc/v1, one peer connection), and v0 (two PCs) when told so.
  for (const [signal, roomOptions] of [['v1', undefined], ['v0', { singlePeerConnection: false }]]) {
  test(`a browser decodes the camera of another browser (${signal})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = `browser-a-${signal}`;
    const ctx = { pages: [], server: await startCorelay() };
    try {
      await withDiagnostics(ctx, async () => {
        const alice = await openPage('alice');
        const bob = await openPage('bob');
        ctx.pages.push(alice, bob);
        const url = wsUrl(ctx.server);

        const t0 = Date.now();
        await bob.connect(url, await token('bob', ROOM), roomOptions);
        await alice.connect(url, await token('alice', ROOM), roomOptions);
        const connectMs = Date.now() - t0;
        await expectSignalPaths(ctx.server, ROOM, { alice: signal, bob: signal });

        const publishedAt = Date.now();
        const pubs = await alice.publish({ camera: true, mic: true });
        assert.deepEqual(
          pubs.map((p) => p.kind).sort(),
          ['audio', 'video'],
          `alice should publish one audio and one video track: ${JSON.stringify(pubs)}`,
        );

        const video = await expectDecodedVideo(bob, 'alice', publishedAt);
        const bobSees = (await bob.stats()).identities;
        assert.ok(bobSees.includes('alice'), `bob's remote participants lack alice: ${JSON.stringify(bobSees)}`);
        const aliceSees = (await alice.stats()).identities;
        assert.ok(aliceSees.includes('bob'), `alice's remote participants lack bob: ${JSON.stringify(aliceSees)}`);

        // Alice's microphone is decoded too: samples keep arriving, mostly not
        // concealment (the SFU passes her RED-wrapped Opus through).
        const audioFrom = (s) => s.audios.find((a) => a.identity === 'alice');
        const first = await waitFor('bob to receive audio samples from alice', async () => {
          const a = audioFrom(await bob.stats());
          return { ok: a && a.totalSamplesReceived > 0, info: a, a };
        });
        const a1 = first.a;
        const audio = await waitFor('bob\'s audio samples from alice to keep rising', async () => {
          const a = audioFrom(await bob.stats());
          return { ok: a && a.totalSamplesReceived >= a1.totalSamplesReceived + 48_000, info: a, a };
        });
        const a2 = audio.a;
        const received = a2.totalSamplesReceived - a1.totalSamplesReceived;
        const concealed = a2.concealedSamples - a1.concealedSamples;
        assert.ok(concealed < received / 2, `most audio was concealment: ${JSON.stringify({ a1, a2 })}`);

        const report = { signal, connectBothMs: connectMs, published: pubs, ...video, audio: { codec: a2.codec, received, concealed } };
        t.diagnostic(`browser->browser ${JSON.stringify(report)}`);
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
  }

  test('a browser and a Python rtc participant decode each other', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = 'browser-b';
    const ctx = { pages: [], server: await startCorelay() };
    let py;
    const pyOut = [];
    const pyErr = [];
    ctx.extra = () =>
      `--- py_peer stdout ---\n${pyOut.join('')}\n--- py_peer stderr (last 100 lines) ---\n` +
      pyErr.join('').split('\n').slice(-100).join('\n');
    try {
      await withDiagnostics(ctx, async () => {
        if (!existsSync(PYTHON)) {
          throw new Error(`${PYTHON} missing: scripts/test creates the venv (target/interop/venv)`);
        }
        const web = await openPage('web');
        ctx.pages.push(web);
        const url = wsUrl(ctx.server);

        await web.connect(url, await token('web', ROOM));
        const pubs = await web.publish({ camera: true, mic: false });
        assert.deepEqual(pubs.map((p) => p.kind), ['video'], `web should publish one video track: ${JSON.stringify(pubs)}`);

        const pyStartedAt = Date.now();
        py = spawn(PYTHON, [PY_PEER, url, await token('py', ROOM)], {
          stdio: ['pipe', 'pipe', 'pipe'],
          cwd: REPO_ROOT,
        });
        const pyExit = new Promise((resolve) => py.once('exit', (code, signal) => resolve({ code, signal })));
        let pyExited = null;
        pyExit.then((x) => {
          pyExited = x;
        });
        py.stdout.setEncoding('utf8').on('data', (d) => pyOut.push(d));
        py.stderr.setEncoding('utf8').on('data', (d) => {
          pyErr.push(d);
          if (pyErr.length > 2000) pyErr.splice(0, 1000);
        });
        py.stdin.on('error', () => {}); // EPIPE if it already left

        const fromPy = await expectDecodedVideo(web, 'py', pyStartedAt);
        const webSees = (await web.stats()).identities;
        assert.ok(webSees.includes('py'), `web's remote participants lack py: ${JSON.stringify(webSees)}`);

        // py_peer prints its result once it has PY_WANT_FRAMES frames (or after 40 s).
        const line = await waitFor(
          'py_peer result line',
          async () => {
            const l = pyOut.join('').split('\n').find((x) => x.trim().startsWith('{'));
            return { ok: !!l || !!pyExited, info: { exited: pyExited }, l };
          },
          45_000,
        );
        assert.ok(line.l, `py_peer exited (${JSON.stringify(pyExited)}) without a result line`);
        const result = JSON.parse(line.l);
        assert.ok(
          result.frames >= PY_WANT_FRAMES,
          `python decoded only ${result.frames} frames of the browser's video (want >= ${PY_WANT_FRAMES}): ${line.l}`,
        );
        assert.ok(
          result.fps >= MIN_DECODED_FPS,
          `python decoded the browser's video at ${result.fps} fps (want >= ${MIN_DECODED_FPS}): ${line.l}`,
        );
        assert.equal(result.from, 'web', `python decoded video from ${result.from}, not web`);
        assert.ok(result.identities.includes('web'), `python's remote participants lack web: ${line.l}`);

        py.stdin.end();
        const exit = await Promise.race([pyExit, sleep(WAIT_MS).then(() => null)]);
        assert.ok(exit, 'py_peer did not exit within 30 s of its stdin closing');
        assert.equal(exit.code, 0, `py_peer exited with ${JSON.stringify(exit)}`);

        const report = { pythonToBrowser: fromPy, browserToPython: result };
        t.diagnostic(`browser<->python ${JSON.stringify(report)}`);
      });
    } finally {
      if (py && py.exitCode === null && py.signalCode === null) py.kill('SIGKILL');
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });

  test('reliable data from one browser reaches the other', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const ROOM = 'browser-c';
    const ctx = { pages: [], server: await startCorelay() };
    try {
      await withDiagnostics(ctx, async () => {
        const alice = await openPage('alice');
        const bob = await openPage('bob');
        ctx.pages.push(alice, bob);
        const url = wsUrl(ctx.server);
        await bob.connect(url, await token('bob', ROOM));
        await alice.connect(url, await token('alice', ROOM));
        await waitFor('bob to see alice', async () => {
          const s = await bob.stats();
          return { ok: s.identities.includes('alice'), info: s.identities };
        });

        const sentAt = Date.now();
        await alice.sendData('hello from alice', 'chat');
        const got = await waitFor('bob to receive alice\'s data packet', async () => {
          const s = await bob.stats();
          return { ok: s.data.length > 0, info: s.data, data: s.data };
        });
        assert.deepEqual(got.data, [{ from: 'alice', topic: 'chat', text: 'hello from alice' }]);
        t.diagnostic(`data delivered in ${Date.now() - sentAt} ms`);
      });
    } finally {
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
});

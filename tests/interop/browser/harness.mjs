// Shared harness for the browser interop tests (simulcast.test.mjs; browser.test.mjs
// holds its own copy of the same helpers): the static page server, headless
// Chromium with the fake camera, one page per participant, failure diagnostics.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { AccessToken } from 'livekit-server-sdk';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const LK_LOG_LEVEL = process.env.LK_LOG_LEVEL || 'debug';
export const WAIT_MS = 30_000; // default for every single wait

// 1280x720 capture with LiveKit's h180/h360 layers under it: rids q (320x180),
// h (640x360) and f (1280x720).
export const SIMULCAST_CAMERA = { resolution: 'h720', simulcast: true, layers: ['h180', 'h360'] };

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Real host candidates instead of mDNS names: no multicast leaves the machine.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

// Only these files are served; everything else is a 404.
const ASSETS = {
  '/': [path.join(HERE, 'page', 'page.html'), 'text/html; charset=utf-8'],
  '/page.js': [path.join(HERE, 'page', 'page.js'), 'text/javascript; charset=utf-8'],
  '/node_modules/livekit-client/dist/livekit-client.umd.js': [
    path.join(HERE, 'node_modules', 'livekit-client', 'dist', 'livekit-client.umd.js'),
    'text/javascript; charset=utf-8',
  ],
  // The SDK's E2EE worker (a module worker), for e2ee.test.mjs.
  '/node_modules/livekit-client/dist/livekit-client.e2ee.worker.mjs': [
    path.join(HERE, 'node_modules', 'livekit-client', 'dist', 'livekit-client.e2ee.worker.mjs'),
    'text/javascript; charset=utf-8',
  ],
  '/node_modules/livekit-client/dist/livekit-client.umd.js.map': [
    path.join(HERE, 'node_modules', 'livekit-client', 'dist', 'livekit-client.umd.js.map'),
    'application/json',
  ],
};

async function startPageServer() {
  const [umd] = ASSETS['/node_modules/livekit-client/dist/livekit-client.umd.js'];
  if (!existsSync(umd)) {
    throw new Error(`${umd} missing: run \`npm ci\` in tests/interop/browser`);
  }
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    if (pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const asset = ASSETS[pathname];
    if (!asset || !existsSync(asset[0])) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': asset[1], 'cache-control': 'no-store' });
    res.end(readFileSync(asset[0]));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Starts the page server and Chromium. Resolves to { openPage(name), close() };
 * each page is its own browser context (own cookies, own fake camera).
 */
export async function startBrowser(extraArgs = []) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} missing: apt-get install chromium (or set CHROMIUM_BIN)`);
  }
  const pageServer = await startPageServer();
  // launch() gives the browser a fresh temporary profile; this dir holds its
  // crash dumps etc. so nothing is written to the user's home.
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'corelay-chromium-'));
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      env: { ...process.env, HOME: userDataDir },
      timeout: WAIT_MS,
    });
  } catch (e) {
    await pageServer.close();
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }

  const openPage = async (name) => {
    const context = await browser.newContext();
    await context.grantPermissions(['camera', 'microphone'], { origin: pageServer.url });
    const page = await context.newPage();
    const consoleLines = [];
    const push = (line) => {
      consoleLines.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
      if (consoleLines.length > 3000) consoleLines.splice(0, 1000);
    };
    page.on('console', (m) => push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => push(`[pageerror] ${e.stack || e}`));
    page.on('requestfailed', (r) => push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
    await page.goto(pageServer.url);
    await page.waitForFunction(() => window.lkReady === true && !!window.LivekitClient, null, {
      timeout: WAIT_MS,
    });
    await page.evaluate((lvl) => window.lkSetLogLevel(lvl), LK_LOG_LEVEL);
    const tail = (n = 150) => consoleLines.slice(-n).join('\n');
    return {
      name,
      page,
      context,
      consoleLines,
      tail,
      connect: (url, tok, roomOptions) =>
        page.evaluate(([u, t, o]) => window.lkConnect(u, t, o), [url, tok, roomOptions ?? null]),
      // End-to-end encryption with the SDK's worker and an ExternalE2EEKeyProvider holding `key`.
      connectE2EE: (url, tok, key) => page.evaluate(([u, t, k]) => window.lkConnectE2EE(u, t, k), [url, tok, key]),
      publish: (opts) => page.evaluate((o) => window.lkPublish(o), opts),
      sendData: (text, topic) => page.evaluate(([x, tp]) => window.lkSendData(x, tp), [text, topic]),
      publishCamera: (opts) => page.evaluate((o) => window.lkPublishCamera(o), opts),
      setVideoQuality: (identity, q) => page.evaluate(([i, x]) => window.lkSetVideoQuality(i, x), [identity, q]),
      setEnabled: (identity, on) => page.evaluate(([i, x]) => window.lkSetEnabled(i, x), [identity, on]),
      setVideoFPS: (identity, fps) => page.evaluate(([i, x]) => window.lkSetVideoFPS(i, x), [identity, fps]),
      publisherLayers: () => page.evaluate(() => window.lkPublisherLayers()),
      stats: () => page.evaluate(() => window.lkStats()),
      simulate: (scenario, arg) => page.evaluate(([sc, a]) => window.lkSimulate(sc, a), [scenario, arg ?? null]),
      // {sid, state, connection: {reconnecting, reconnected, signalReconnecting}, data: [...]}
      session: () => page.evaluate(() => window.lkSession()),
      events: () => page.evaluate(() => window.lkEvents()),
      transportStats: () => page.evaluate(() => window.lkTransportStats()),
      close: async () => {
        await page.evaluate(() => window.lkDisconnect()).catch(() => {});
        await context.close().catch(() => {});
      },
    };
  };

  const close = async () => {
    await browser.close().catch(() => {});
    await pageServer.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };

  return { openPage, close };
}

export async function describePage(p) {
  const safe = async (fn) => {
    try {
      return JSON.stringify(await fn(), null, 1);
    } catch (e) {
      return `(unavailable: ${e.message})`;
    }
  };
  return [
    `--- page ${p.name}: lkStats ---`,
    await safe(p.stats),
    `--- page ${p.name}: publisher video layers (outbound-rtp per rid) ---`,
    await safe(p.publisherLayers),
    `--- page ${p.name}: peer connection getStats (summary) ---`,
    await safe(p.transportStats),
    `--- page ${p.name}: events ---`,
    await safe(p.events),
    `--- page ${p.name}: console (last 150 lines) ---`,
    p.tail(),
  ].join('\n');
}

/**
 * Opens one page per name (each into ctx.pages as it opens), then connects them to
 * `room` on ctx.server in `connectOrder` (default: the same order), with livekit-client
 * `roomOptions` if given. Returns the pages by name.
 */
export async function joinPages(env, ctx, room, names, connectOrder = names, roomOptions = undefined) {
  const pages = {};
  for (const name of names) {
    pages[name] = await env.openPage(name);
    ctx.pages.push(pages[name]);
  }
  const url = wsUrl(ctx.server);
  for (const name of connectOrder) await pages[name].connect(url, await token(name, room), roomOptions);
  return pages;
}

/** identity → signal path ("v0"/"v1") of each join in `room`, from the server's log. */
function signalPaths(log, room) {
  const paths = {};
  const re = new RegExp(`participant joined conn=\\d+ room=${room} identity=(\\S+) .*signal="(v\\d)"`, 'g');
  for (const m of log.matchAll(re)) paths[m[1]] = m[2];
  return paths;
}

/** Waits until the server's log says each join in `room` used the path `want` names. */
export async function expectSignalPaths(server, room, want) {
  await waitFor(`the joins in ${room} to use ${JSON.stringify(want)}`, async () => {
    const got = signalPaths(server.fullLog(), room);
    return { ok: Object.entries(want).every(([who, path]) => got[who] === path), info: got };
  });
}

/** The server's request, join and signal-close lines (at most 20), for a failure's first lines. */
function signalSummary(log) {
  const lines = log
    .split('\n')
    .filter((l) => /http request|participant joined|join refused|signal connection closed|ERROR|WARN/.test(l))
    .map((l) => l.replace(/^\S*T(\d\d:\d\d:\d\d\.\d{3})\d*Z/, '$1').slice(0, 200));
  const shown = lines.length > 20 ? [...lines.slice(0, 20), `... ${lines.length - 20} more`] : lines;
  return `--- server: requests and joins ---\n${shown.join('\n') || '(none logged)'}`;
}

/** Runs body(); on failure rethrows with ctx.extra(), each page's state and console, and the server log. */
export async function withDiagnostics(ctx, body) {
  try {
    return await body();
  } catch (e) {
    const [first, ...rest] = (e.stack || String(e)).split('\n');
    // What the server made of the signal requests, right after the message: CI shows the start.
    const parts = [first, ...(ctx.server ? [signalSummary(ctx.server.fullLog())] : []), rest.join('\n')];
    if (ctx.extra) {
      try {
        parts.push(await ctx.extra());
      } catch (x) {
        parts.push(`(extra diagnostics failed: ${x.message})`);
      }
    }
    for (const p of ctx.pages) parts.push(await describePage(p));
    if (ctx.server) parts.push(ctx.server.logs());
    const err = new Error(parts.join('\n\n'));
    err.cause = e;
    throw err;
  }
}

/** Polls fn() until it returns {ok: true, ...}; fails with `what` and the last `info`. */
export async function waitFor(what, fn, timeoutMs = WAIT_MS, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last?.ok) return last;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for ${what}; last: ${JSON.stringify(last?.info ?? last)}`,
      );
    }
    await sleep(everyMs);
  }
}

export function token(identity, room) {
  const at = new AccessToken('devkey', 'secret', { identity });
  at.addGrant({ roomJoin: true, room });
  return at.toJwt();
}

export const wsUrl = (server) => server.url.replace(/^http/, 'ws');

/** The inbound video from `fromIdentity` in a page's lkStats(), or undefined. */
export const videoFrom = (stats, fromIdentity) => stats.videos.find((v) => v.identity === fromIdentity);

/**
 * Requires `viewer`'s decoded frames of `fromIdentity`'s video (delta frames included)
 * to rise over `gapMs`. Returns both samples.
 */
export async function expectFramesRising(viewer, fromIdentity, gapMs = 2_000, minFps = 5) {
  const s1 = videoFrom(await viewer.stats(), fromIdentity);
  assert.ok(s1, `${viewer.name}: no video from ${fromIdentity}`);
  await sleep(gapMs);
  const s2 = videoFrom(await viewer.stats(), fromIdentity);
  assert.ok(s2, `${viewer.name}: video from ${fromIdentity} disappeared: ${JSON.stringify(s1)}`);
  const fps = ((s2.framesDecoded - s1.framesDecoded) * 1000) / gapMs;
  assert.ok(
    s2.framesDecoded - s2.keyFramesDecoded > s1.framesDecoded - s1.keyFramesDecoded,
    `${viewer.name}: no delta frame of ${fromIdentity}'s video decoded over ${gapMs} ms: ` +
      `${JSON.stringify(s1)} -> ${JSON.stringify(s2)}`,
  );
  assert.ok(
    fps >= minFps,
    `${viewer.name}: decoded ${fps.toFixed(1)} fps of ${fromIdentity}'s video over ${gapMs} ms ` +
      `(want >= ${minFps}): ${JSON.stringify(s1)} -> ${JSON.stringify(s2)}`,
  );
  return { s1, s2, fps: +fps.toFixed(1) };
}

/**
 * Waits for `slow`, which asked for a low frame rate, to decode `from`'s video at
 * least at `high`'s current width and under 60 % of `highFps`. Returns its run.
 */
export async function expectReducedRate(slow, high, from, highFps, { windowMs = 2_000, waitMs = 20_000 } = {}) {
  const found = await waitFor(
    `${slow.name} to decode full size at under 60 % of the full rate`,
    async () => {
      const run = await expectFramesRising(slow, from, windowMs, 1);
      // HIGH's size now: its layer may have moved since highFps was measured.
      const highNow = videoFrom(await high.stats(), from);
      const ok = run.s2.frameWidth >= (highNow?.frameWidth ?? Infinity) && run.fps < highFps * 0.6;
      return { ok, info: { slow: { ...briefVideo(run.s2), fps: run.fps }, high: briefVideo(highNow), highFps }, run };
    },
    waitMs,
    0,
  );
  return found.run;
}

/** The inbound-rtp fields the layer tests compare and report. */
export const briefVideo = (v) =>
  v && {
    codec: v.codec,
    frameWidth: v.frameWidth,
    frameHeight: v.frameHeight,
    videoWidth: v.videoWidth,
    framesDecoded: v.framesDecoded,
    keyFramesDecoded: v.keyFramesDecoded,
    packetsReceived: v.packetsReceived,
    bytesReceived: v.bytesReceived,
    headerBytesReceived: v.headerBytesReceived,
    retransmittedPacketsReceived: v.retransmittedPacketsReceived,
    retransmittedBytesReceived: v.retransmittedBytesReceived,
    packetsLost: v.packetsLost,
    framesDropped: v.framesDropped,
    freezeCount: v.freezeCount,
    pliCount: v.pliCount,
    ssrc: v.ssrc,
  };

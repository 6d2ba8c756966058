// Browser interop, ICE over TCP (issue 12): with UDP to the server's media ports
// dropped by an nftables table this test makes for itself (and removes), livekit-client
// in Chromium reaches the server through its passive TCP candidates: the subscriber
// decodes the publisher's camera, frames rising. The rule's counter shows Chromium
// tried UDP first.
//
// Run: node --test tests/interop/browser/   (needs root and nft; skipped otherwise).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import { startCorelay } from './corelay.mjs';
import { expectFramesRising, joinPages, startBrowser, videoFrom, waitFor, withDiagnostics } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const SHARD_STARTED = /shard started .*? udp=\[(.*)\] tcp=/m;

function nftUsable() {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const nft = (args, input) => execFileSync('nft', args, { input, encoding: 'utf8' });

let env;

before(async () => {
  if (nftUsable()) env = await startBrowser();
});

after(async () => {
  await env?.close();
});

describe('ICE over TCP with livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  test('media flows over ICE/TCP when UDP to the media ports is dropped', { timeout: TEST_TIMEOUT_MS, skip: !nftUsable() && 'needs root and nft' }, async (t) => {
    const ROOM = 'ice-tcp';
    const ctx = { pages: [], server: await startCorelay() };
    const table = `corelay_test_${randomBytes(4).toString('hex')}`;
    try {
      await withDiagnostics(ctx, async () => {
        const line = await waitFor('the shard to report its sockets', async () => {
          const m = SHARD_STARTED.exec(ctx.server.fullLog());
          return { ok: !!m, info: m?.[1] ?? '' };
        });
        // IPv6 addresses come bracketed: the port is what follows the last colon.
        const ports = [...new Set(line.info.split(', ').map((a) => a.split(':').pop()))];
        nft(['-f', '-'], `table inet ${table} {
          chain input {
            type filter hook input priority 0; policy accept;
            udp dport { ${ports.join(', ')} } counter drop
          }
        }`);
        const { pub, sub } = await joinPages(env, ctx, ROOM, ['pub', 'sub']);
        const published = await pub.publishCamera({ resolution: 'h360' });
        assert.ok(published.sid, `pub published no camera track: ${JSON.stringify(published)}`);
        await waitFor('sub to play pub\'s video over ICE/TCP', async () => {
          const v = videoFrom(await sub.stats(), 'pub');
          return { ok: v && v.videoWidth > 0, info: JSON.stringify(v ?? null) };
        }, 45_000);
        const run = await expectFramesRising(sub, 'pub');
        const counted = /counter packets (\d+)/.exec(nft(['list', 'table', 'inet', table]));
        assert.ok(counted && Number(counted[1]) > 0, 'Chromium never tried UDP: the rule proved nothing');
        t.diagnostic(`ice-tcp ${JSON.stringify({ fps: run.fps, udpDropped: Number(counted[1]) })}`);
      });
    } finally {
      try {
        execFileSync('nft', ['delete', 'table', 'inet', table], { stdio: 'ignore' });
      } catch {
        // never created
      }
      for (const p of ctx.pages) await p.close();
      await ctx.server.stop();
    }
  });
});

// Browser interop, embedded TURN (issue 12): with `turn.enabled` and livekit-client told
// to use relay candidates only (rtcConfig.iceTransportPolicy 'relay'), both Chromium
// participants reach the SFU through corelay's own TURN server, using the credentials
// the JoinResponse gave them: the subscriber decodes the publisher's camera, frames
// rising. Once over UDP, once over TLS (a certificate for `localhost` the test makes
// with openssl; Chromium is started with --ignore-certificate-errors to accept it, and
// UDP to the TURN port is not offered: the config has no udp_port). The server's log
// shows the allocations and ICE nominating relay addresses.
//
// Run: node --test tests/interop/browser/   (see browser.test.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { startCorelay } from './corelay.mjs';
import { expectFramesRising, joinPages, startBrowser, videoFrom, waitFor, withDiagnostics } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const RELAY = [42000, 42999];

/** A UDP port free right now (the server binds it a moment later). */
async function freeUdpPort() {
  const s = dgram.createSocket('udp4');
  await new Promise((resolve) => s.bind(0, '0.0.0.0', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** A TCP port free right now. */
async function freeTcpPort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

let env;

before(async () => {
  env = await startBrowser(['--ignore-certificate-errors']);
});

after(async () => {
  await env?.close();
});

describe('embedded TURN with livekit-client in Chromium', { timeout: TEST_TIMEOUT_MS }, () => {
  for (const transport of ['udp', 'tls']) {
    test(`relay-only clients exchange media through the embedded TURN server (${transport})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const ROOM = `turn-${transport}`;
      const dir = mkdtempSync(path.join(os.tmpdir(), 'corelay-turn-'));
      const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
      let config;
      if (transport === 'udp') {
        config = `turn:
  enabled: true
  udp_port: ${await freeUdpPort()}
  tls_port: 0
  relay_range_start: ${RELAY[0]}
  relay_range_end: ${RELAY[1]}
`;
      } else {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
          '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
          '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
        config = `turn:
  enabled: true
  udp_port: 0
  tls_port: ${await freeTcpPort()}
  domain: localhost
  cert_file: ${cert}
  key_file: ${key}
  relay_range_start: ${RELAY[0]}
  relay_range_end: ${RELAY[1]}
`;
      }
      const ctx = { pages: [], server: await startCorelay({ LIVEKIT_CONFIG: config }) };
      try {
        await withDiagnostics(ctx, async () => {
          const relayOnly = { connectOptions: { rtcConfig: { iceTransportPolicy: 'relay' } } };
          const names = ['pub', 'sub'];
          const { pub, sub } = await joinPages(env, ctx, ROOM, names, names, relayOnly);
          const published = await pub.publishCamera({ resolution: 'h360' });
          assert.ok(published.sid, `pub published no camera track: ${JSON.stringify(published)}`);
          await waitFor(`sub to play pub's video through the relay (${transport})`, async () => {
            const v = videoFrom(await sub.stats(), 'pub');
            return { ok: v && v.videoWidth > 0, info: JSON.stringify(v ?? null) };
          }, 45_000);
          const run = await expectFramesRising(sub, 'pub');
          const log = ctx.server.fullLog();
          const allocations = (log.match(/TURN allocation .*relay=Ok/g) ?? []).length;
          assert.ok(allocations >= 2, `expected an allocation per client, found ${allocations}`);
          const nominated = [...log.matchAll(/ICE nominated send from: \S+ to: \S+:(\d+) /g)].map((m) => Number(m[1]));
          const relayed = nominated.filter((p) => p >= RELAY[0] && p <= RELAY[1]);
          assert.ok(relayed.length >= 2, `ICE should nominate relay addresses for both: ${nominated}`);
          t.diagnostic(`turn-${transport} ${JSON.stringify({ fps: run.fps, allocations, relayedPairs: relayed.length })}`);
        });
      } finally {
        for (const p of ctx.pages) await p.close();
        await ctx.server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

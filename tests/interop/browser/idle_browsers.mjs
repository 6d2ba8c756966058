// A measurement, not a test (not matched by *.test.mjs): idle livekit-client pages
// against a shard that turns quiet. N pages (env N, default 4) join one room and
// publish nothing; over 20 s it prints the datagrams the server received per second
// and, per page, what its nominated ICE candidate pair saw (STUN requests sent per
// second, responses, mean round-trip time) and whether it reconnected.
//   CORELAY_BIN=target/release/corelay node tests/interop/browser/idle_browsers.mjs
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AccessToken } from 'livekit-server-sdk';
import { startCorelay, API_KEY, API_SECRET } from './corelay.mjs';
import { startBrowser } from './harness.mjs';

const N = Number(process.env.N || 4);
// A free port for /metrics (corelay's prometheus_port needs a number).
const PROM = await new Promise((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const server = await startCorelay({ LIVEKIT_CONFIG: `prometheus_port: ${PROM}` });
const env = await startBrowser();
const token = async (id) => {
  const t = new AccessToken(API_KEY, API_SECRET, { identity: id });
  t.addGrant({ roomJoin: true, room: 'idle' });
  return t.toJwt();
};
const scrape = async () => {
  const text = await (await fetch(`http://127.0.0.1:${PROM}/metrics`)).text();
  const m = text.match(/livekit_packet_total\{[^}]*direction="incoming"\} (\d+)/);
  return Number(m ? m[1] : NaN);
};
const pairs = async (p) => {
  const out = {};
  for (const pc of ['publisher', 'subscriber']) {
    const rows = await p.page.evaluate((n) => window.lkRawStats(n), pc);
    if (!rows) continue;
    const nominated = rows.filter((r) => r.type === 'candidate-pair' && r.nominated);
    for (const r of nominated) {
      out[pc] = {
        req: r.requestsSent, resp: r.responsesReceived, rtt: r.totalRoundTripTime,
        cur: r.currentRoundTripTime, state: r.state,
      };
    }
  }
  return out;
};
const pages = [];
try {
  for (let i = 0; i < N; i++) {
    const p = await env.openPage(`p${i}`);
    await p.connect(server.url.replace('http', 'ws'), await token(`p${i}`));
    pages.push(p);
  }
  await sleep(8000);
  const in0 = await scrape();
  const s0 = await Promise.all(pages.map(pairs));
  const t0 = Date.now();
  await sleep(20000);
  const in1 = await scrape();
  const s1 = await Promise.all(pages.map(pairs));
  const dt = (Date.now() - t0) / 1000;
  console.log(`server datagrams in: ${((in1 - in0) / dt).toFixed(2)}/s for ${N} pages`);
  for (let i = 0; i < N; i++) {
    for (const pc of Object.keys(s1[i])) {
      const a = s0[i][pc], b = s1[i][pc];
      if (!a || !b) continue;
      const req = (b.req - a.req) / dt;
      const resp = b.resp - a.resp;
      const rtt = resp > 0 ? ((b.rtt - a.rtt) / resp) * 1000 : NaN;
      console.log(`p${i} ${pc}: STUN requests ${req.toFixed(2)}/s, responses ${resp}, mean RTT ${rtt.toFixed(1)} ms, state ${b.state}`);
    }
    const sess = await pages[i].session();
    console.log(`p${i} connection: ${JSON.stringify(sess.connection)} state ${sess.state}`);
  }
} finally {
  for (const p of pages) await p.close();
  await env.close();
  await server.stop();
}

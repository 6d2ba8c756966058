// Start a real corelay binary for the browser interop tests.
//
// `$CORELAY_BIN --dev --port 0 --udp-port 0 --tcp-port 0` prints one line per listener on stdout
// ("corelay listening on http://127.0.0.1:PORT"); the first one is used.
// stderr (the logs) goes straight to a file, so it can never fill a pipe;
// stdout is read for the server's whole life.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..', '..');
export const API_KEY = 'devkey';
export const API_SECRET = 'secret';

const LISTEN_RE = /listening on (http:\/\/\S+)/;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

function corelayBin() {
  let bin = process.env.CORELAY_BIN || path.join(REPO_ROOT, 'target', 'debug', 'corelay');
  if (!path.isAbsolute(bin)) bin = path.resolve(REPO_ROOT, bin);
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `corelay binary not found at ${bin}: run \`cargo build --bin corelay\` or set CORELAY_BIN`,
    );
  }
  return bin;
}

/**
 * Starts corelay and resolves to { url, apiKey, apiSecret, logs(), stop() }. `env`
 * (optional) is added to its environment, e.g. LIVEKIT_CONFIG for config keys; `args`
 * (optional) go on its command line, e.g. ['--core-affinity', file].
 */
export async function startCorelay(env = {}, args = []) {
  const bin = corelayBin();
  const logDir = path.join(REPO_ROOT, 'target', 'interop', 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `corelay-browser-${process.pid}-${Date.now()}.log`);
  const logFd = openSync(logFile, 'w');

  const child = spawn(bin, ['--dev', '--port', '0', '--udp-port', '0', '--tcp-port', '0', ...args], {
    stdio: ['ignore', 'pipe', logFd],
    env: { ...process.env, ...env },
    // Own process group: stop() signals the whole group, so a wrapper script's
    // children cannot keep the stdout pipe (and this test process) alive.
    detached: true,
  });
  closeSync(logFd); // the child holds its own copy

  const stdoutLines = [];
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const logs = () => {
    const err = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const tail = err.length > 20000 ? `...\n${err.slice(-20000)}` : err;
    return `--- corelay stdout ---\n${stdoutLines.join('\n')}\n--- corelay stderr (${logFile}) ---\n${tail}`;
  };

  const signalGroup = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };

  const stop = async () => {
    if (!exited) {
      signalGroup('SIGTERM');
      let timer;
      const killed = new Promise((resolve) => {
        timer = setTimeout(() => {
          if (!exited) signalGroup('SIGKILL');
          resolve();
        }, STOP_TIMEOUT_MS);
      });
      await Promise.race([exitPromise, killed]);
      clearTimeout(timer);
      await exitPromise;
    }
    signalGroup('SIGKILL'); // leftovers in the group, if any
    child.stdout.destroy();
    return exited;
  };

  const url = await new Promise((resolve, reject) => {
    let buf = '';
    let found = false;
    const timer = setTimeout(() => {
      if (!found) fail(`printed no 'listening on http://...' line within ${START_TIMEOUT_MS / 1000}s`);
    }, START_TIMEOUT_MS);
    let failed = false;
    const fail = (why) => {
      if (failed) return;
      failed = true;
      clearTimeout(timer);
      stop().finally(() => reject(new Error(`corelay (${bin}) ${why}\n${logs()}`)));
    };
    child.once('error', (e) => fail(`failed to start: ${e.message}`));
    child.once('exit', (code, signal) => {
      if (!found && !failed) fail(`exited with ${signal ? `signal ${signal}` : `status ${code}`}`);
    });
    child.stdout.setEncoding('utf8');
    // Keep draining stdout after the URL is found.
    child.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        stdoutLines.push(line);
        const m = !found && LISTEN_RE.exec(line);
        if (m) {
          found = true;
          clearTimeout(timer);
          resolve(m[1].replace(/\/+$/, ''));
        }
      }
    });
  });

  const fullLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  return { url, apiKey: API_KEY, apiSecret: API_SECRET, logs, fullLog, stop, process: child };
}

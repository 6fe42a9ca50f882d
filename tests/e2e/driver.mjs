// Starts the real BeatSync app through tauri-driver (WebDriver over
// WebKitWebDriver) and connects webdriverio to it. Needs a display: the test
// command runs this under Xvfb.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { remote } from 'webdriverio';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const OUT_DIR = path.resolve(process.env.BEATSYNC_TEST_OUT || path.join(ROOT, 'test-output'), 'e2e');

export function appPath() {
  const p = process.env.BEATSYNC_APP || path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'beatsync-app');
  if (!fs.existsSync(p)) throw new Error(`app binary not found at ${p}: build it first (cargo build -p beatsync-app)`);
  return path.resolve(p);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

async function waitForPort(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); r(true); });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tauri-driver did not listen on ${port} within ${ms} ms`);
}

/**
 * A throw-away home for the app and its webview: HOME and the XDG data, config and cache
 * folders under `root`, so nothing of the user's own (WebKit storage, settings, the job
 * store) is read or written; the user's Videos folder (the default output folder) is
 * `videos`, set the way a desktop sets it (user-dirs.dirs). Returns the environment.
 */
export function isolatedEnv(root, videos) {
  const env = {
    HOME: path.join(root, 'home'),
    XDG_DATA_HOME: path.join(root, 'data'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_CACHE_HOME: path.join(root, 'cache'),
  };
  for (const d of Object.values(env)) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(env.XDG_CONFIG_HOME, 'user-dirs.dirs'), `XDG_VIDEOS_DIR="${videos}"\n`);
  return env;
}

/**
 * Launches the app; returns { browser, stop }. `env` is added to the app's environment,
 * `args` are its command line arguments (e.g. files to open).
 */
export async function startApp({ env = {}, args = [] } = {}) {
  if (!process.env.DISPLAY) throw new Error('no DISPLAY: run the end-to-end tests under Xvfb (the README test command does)');
  const port = await freePort();
  const nativePort = await freePort();
  const driverBin = path.join(ROOT, 'tests/node_modules/.bin/tauri-driver');
  const driver = spawn(driverBin, ['--port', String(port), '--native-port', String(nativePort), '--native-driver', '/usr/bin/WebKitWebDriver'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env },
  });
  await waitForPort(port, 15000);
  const browser = await remote({
    hostname: '127.0.0.1',
    port,
    logLevel: 'error',
    connectionRetryCount: 1,
    capabilities: {
      'wdio:enforceWebDriverClassic': true,
      'tauri:options': { application: appPath(), args },
    },
  });
  await browser.waitUntil(() => browser.execute(() => document.body.dataset.ready === 'true'), { timeout: 20000, timeoutMsg: 'UI never became ready' });
  const pid = appPidUnder(driver.pid);
  const stop = async () => {
    try { await browser.deleteSession(); } catch { /* already gone */ }
    driver.kill('SIGTERM');
    // A window that outlives its session (seen on a loaded machine) would keep the
    // test runner waiting on its inherited output: end it after a grace period.
    await endProcess(pid, 10000);
    await singleInstanceReleased(5000);
  };
  return { browser, stop, pid };
}

/** The pid of the app process started (through WebKitWebDriver) under `rootPid`, or null. */
export function appPidUnder(rootPid) {
  const exe = appPath();
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* process ended meanwhile */ }
  }
  const queue = [rootPid];
  while (queue.length) {
    const p = queue.shift();
    for (const c of children.get(p) || []) {
      try { if (fs.readlinkSync(`/proc/${c}/exe`) === exe) return c; } catch { /* gone or not ours */ }
      queue.push(c);
    }
  }
  return null;
}

export function isAlive(pid) {
  if (!pid) return false;
  try { process.kill(pid, 0); } catch { return false; }
  try { return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

/** The session-bus name the app's single-instance plugin holds while it runs. */
function singleInstanceName() {
  const conf = JSON.parse(fs.readFileSync(path.join(ROOT, 'tauri.conf.json'), 'utf8'));
  return `${conf.identifier}.SingleInstance`;
}

/**
 * Waits up to `ms` until no one holds the app's single-instance bus name. The bus frees it
 * a moment after the app's process has ended; an app started in that moment finds the name
 * taken, cannot hand its arguments to an instance that is gone, and does not start (seen
 * once in CI: "failed to forward arguments to the running instance: ... NoReply").
 */
async function singleInstanceReleased(ms) {
  const name = singleInstanceName();
  const end = Date.now() + ms;
  for (;;) {
    const r = spawnSync('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus', 'org.freedesktop.DBus.ListNames'], { encoding: 'utf8' });
    // no session bus (the bus is the test command's): nothing to wait for
    if (r.status !== 0 || !r.stdout.includes(`"${name}`)) return;
    if (Date.now() >= end) {
      console.error(`the bus still holds ${name} ${ms} ms after the app ended`);
      return;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Waits up to `graceMs` for `pid` to end, then kills it; resolves once it is gone. */
export async function endProcess(pid, graceMs) {
  const end = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  if (!isAlive(pid)) return;
  console.error(`the app (pid ${pid}) outlived its WebDriver session by ${graceMs} ms: killing it`);
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
}

/**
 * The window as a PNG (base64). WebKitGTK without accelerated compositing (the app's default
 * on Linux, src-tauri/webkit.rs) answers WebDriver's screenshot only after the page paints
 * again, so a window where nothing changes would never answer (measured: the command times
 * out). While it is taken, a 1-px mark in the bottom-right corner, nearly transparent,
 * changes at every animation frame; it is removed after.
 */
export async function takeScreenshot(browser) {
  await browser.execute(() => {
    const mark = document.createElement('div');
    mark.id = '__paint-mark';
    mark.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;opacity:0.01;pointer-events:none;z-index:2147483647';
    document.body.append(mark);
    let n = 0;
    const tick = () => {
      if (!mark.isConnected) return;
      mark.style.background = n++ % 2 ? '#000' : '#fff';
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  try {
    return await browser.takeScreenshot();
  } finally {
    await browser.execute(() => document.getElementById('__paint-mark')?.remove());
  }
}

export async function screenshot(browser, name) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `${name}.png`);
  fs.writeFileSync(file, Buffer.from(await takeScreenshot(browser), 'base64'));
  return file;
}

/** Generates a small media fixture with the ffmpeg CLI. */
export function ffmpeg(args) {
  const r = spawnSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

// A small "song" for the fixtures (an ffmpeg aevalsrc expression): a kick on every beat at
// 120 BPM, a hi-hat on off-beats, and two tones changing pitch on different grids (every 0.5 s
// over 11 notes, every 0.75 s over 13) so no stretch of it repeats within 40 s.
export const SONG_EXPR = [
  '0.6*sin(2*PI*55*t)*exp(-18*mod(t,0.5))',
  '0.15*(random(0)*2-1)*exp(-80*mod(t+0.25,0.5))',
  '0.2*sin(2*PI*(220+20*mod(floor(t*2)*7,11))*t)',
  '0.15*sin(2*PI*(330+25*mod(floor(t*4/3)*5,13))*t)',
].join('+');

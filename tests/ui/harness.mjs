// Serves ui/ on loopback and opens it in headless Chromium with the Tauri IPC
// replaced by a mock (tests/ui/mock-ipc.js), so the UI logic is tested alone.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const UI_DIR = path.resolve(here, '../../ui');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

export function serveUi() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const file = path.resolve(UI_DIR, '.' + rel);
    if (!file.startsWith(UI_DIR) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && fs.existsSync(p)) return p;
  }
  throw new Error('Chromium not found: install Debian package "chromium" (the README test command does)');
}

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Opens the UI with the mock IPC in a window the size of the app's (1100×720).
 * `locale` sets navigator.languages, `colorScheme` the system theme; `init` = { fn, arg }
 * runs in the page after the mock and before the app (e.g. fixtures.mjs's backend).
 */
export async function openUi(browser, server, { locale = 'en-US', colorScheme = 'light', init = null } = {}) {
  const context = await browser.newContext({ locale, colorScheme, viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.addInitScript({ path: path.join(here, 'mock-ipc.js') });
  if (init) await page.addInitScript(init.fn, init.arg);
  const { port } = server.address();
  await page.goto(`http://127.0.0.1:${port}/index.html`);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, context, errors };
}

export const SHOTS_DIR = path.resolve(here, '../../test-output/ui');

/** Saves a screenshot of the whole window to test-output/ui/<name>.png. */
export async function screenshot(page, name) {
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS_DIR, `${name}.png`) });
}

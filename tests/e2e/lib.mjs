// Helpers shared by the end-to-end tests: paths, bounded waits, starting a veil process and
// waiting for its "ready:" line, stopping it, an SDK client, raw HTTP, OpenAI error bodies.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VEIL = path.resolve(root, process.env.VEIL_BIN ?? 'build/veil');
export const MODEL = path.join(root, 'models/stories260K.gguf');
export const MODEL_NAME = 'stories260K';
// Every bounded wait is multiplied by this: sanitizer builds run several times slower, more
// so on a loaded machine (VEIL_E2E_TIME_SCALE overrides it). Bounds, never expectations.
export const SANITIZED = /asan|ubsan|tsan/.test(VEIL);
export const TIME_SCALE = Number(process.env.VEIL_E2E_TIME_SCALE) || (SANITIZED ? 4 : 1);

export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    const bound = ms * TIME_SCALE;
    timer = setTimeout(() => reject(new Error(`timed out after ${bound} ms: ${what}`)), bound);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Starts `veil ARGS...`; resolves once it printed "ready: REST" with { proc, ready: REST,
// url (when REST is one), stdout(), stderr(), exited }. A devnet is ready after its proxy,
// workers and gateway each were (each one hashes the executable for its measurement and
// makes its keys): generous, since that is slow under ASan on a busy machine.
export async function startVeil(args, { ms = 120000, env } = {}) {
  const proc = spawn(VEIL, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  let stderr = '';
  let out = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^ready: (.*)$/m);
      if (m) resolve(m[1]);
    });
    exited.then(({ code }) => reject(new Error(`veil ${args[0]} exited (${code}) before ready: ${stderr}`)));
  }), ms, `veil ${args[0]} ready line`);
  const url = /^http:\/\/\S+$/.test(ready) ? ready : null;
  return { proc, ready, url, exited, stdout: () => out, stderr: () => stderr };
}

export async function stopVeil(s, ms = 60000) {
  if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGTERM');
  return withTimeout(s.exited, ms, 'exit');
}

export function client(s) {
  return new OpenAI({ apiKey: 'unused', baseURL: `${s.url}/v1`, maxRetries: 0, timeout: 60000 * TIME_SCALE });
}

export async function postRaw(s, route, body, headers = {}) {
  const res = await fetch(`${s.url}${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

export function assertErrorBody(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, `OpenAI error body expected, got: ${r.text}`);
  const e = r.json.error;
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e && 'code' in e);
  assert.equal(e.param, param);
}

export async function collectStream(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

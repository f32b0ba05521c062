// End to end, the network under stress and attack, with real processes on loopback:
//   - nodes with an unknown model hash, an untrusted sim platform key or an unknown
//     measurement are refused with a logged reason while the network keeps serving;
//   - the canary: a secret in a prompt never appears in the proxy's log, in the frames it
//     relays, nor in a core dump of the proxy taken mid-request (gcore; the workers are
//     stopped meanwhile, so the request is in flight however long the dumps take), while the
//     same dump method finds it in the client gateway, which holds the plaintext;
//   - kill -9 of a worker under load: every request completes or ends with a clean error,
//     none hangs; requests that got nothing yet are failed over to the other worker;
//   - 100 concurrent streams through one proxy;
//   - a request past the gateway's --request-timeout ends with a timeout error (504), its
//     generation stopped;
//   - evidence renewal: with a max evidence age of a few seconds, requests keep succeeding
//     across several renewals, and nodes that join after the first evidence went stale (a
//     worker, a gateway) accept the network and are accepted by it.
// Every wait is bounded; log lines are awaited by polling the log file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  VEIL, MODEL, MODEL_NAME, SANITIZED, TIME_SCALE, withTimeout, startVeil, stopVeil, client, collectStream,
  postRaw, assertErrorBody,
} from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'veil-net-'));
const running = [];
after(async () => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (!process.env.VEIL_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

// A devnet keeping its keys and logs in a fresh directory.
async function devnet(name, extra = []) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const n = await startVeil(['devnet', '--listen', '127.0.0.1:0', '--model', MODEL, '--dir', path.join(dir, 'state'),
    '--log-dir', logs, ...extra]);
  running.push(n.proc);
  const out = n.stdout();
  const m = out.match(/^devnet: proxy workers (\S+) clients (\S+) dir (\S+)$/m);
  const pid = (who) => Number(out.match(new RegExp(`^devnet: ${who} pid (\\d+)$`, 'm'))[1]);
  return { ...n, dir, logs, workers: m[1], clients: m[2], state: m[3], pid };
}

function readLog(d, who) {
  try { return fs.readFileSync(path.join(d.logs, `${who}.log`), 'utf8'); } catch { return ''; }
}

// Polls a file until it matches re; bounded.
async function waitFor(read, re, what, ms = 20000) {
  const deadline = Date.now() + ms * TIME_SCALE;
  for (;;) {
    const text = read();
    if (re.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`never saw ${re} in ${what}:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20)); // polling interval, not synchronisation
  }
}

// An extra worker joining d's proxy with the given attestation flags; its stderr is kept.
function extraWorker(d, model, flags) {
  const proc = spawn(VEIL, ['worker', '--model', model, '--proxy', d.workers, '--threads', '1', ...flags],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (x) => { err += x; });
  running.push(proc);
  return { proc, err: () => err };
}

async function stillServes(d) {
  const r = await client(d).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4 });
  assert.equal(r.usage.completion_tokens, 4);
}

test('network: unknown model hash, untrusted platform key, unknown measurement are refused', async () => {
  const d = await devnet('refuse');
  try {
    const trust = ['--trust-sim-keys', path.join(d.state, 'trusted-sim-keys.txt'),
      '--allow-measurements', path.join(d.state, 'measurements.txt')];
    const honestKey = ['--sim-key', path.join(d.state, 'platform.key')];

    // the same model with one byte more: another SHA-256
    const other = path.join(d.dir, 'other.gguf');
    fs.copyFileSync(MODEL, other);
    fs.appendFileSync(other, 'x');
    const w1 = extraWorker(d, other, [...honestKey, ...trust]);
    await waitFor(() => readLog(d, 'proxy'), /closed: model 'stories260K' sha256 [0-9a-f]{64} is not allowed/, 'proxy log');
    await waitFor(w1.err, /peer closed with error 4: model/, 'worker log');
    w1.proc.kill('SIGKILL');
    await stillServes(d);

    // a platform key nobody trusts
    const w2 = extraWorker(d, MODEL, ['--sim-key', path.join(d.dir, 'rogue.key'), ...trust]);
    await waitFor(() => readLog(d, 'proxy'), /closed: peer rejected: sim evidence signed by platform key [0-9a-f]{64}, which this verifier does not trust/, 'proxy log');
    w2.proc.kill('SIGKILL');
    await stillServes(d);

    // software the network does not allow
    const w3 = extraWorker(d, MODEL, [...honestKey, ...trust, '--measurement', '00'.repeat(32)]);
    await waitFor(() => readLog(d, 'proxy'), /closed: peer rejected: .*measurement/i, 'proxy log');
    w3.proc.kill('SIGKILL');
    await stillServes(d);
    const models = await client(d).models.list();
    assert.deepEqual(models.data.map((m) => m.id), [MODEL_NAME]);
  } finally {
    assert.equal((await stopVeil(d)).code, 0);
  }
});

test('network: evidence is renewed before it goes stale; requests never fail across renewals', async () => {
  const maxAge = 3 * TIME_SCALE;
  const d = await devnet('renew', ['--max-evidence-age', String(maxAge)]);
  const renewed = (who, n) => new RegExp(`renewed the node identity \\(evidence issued now, renewal ${n}\\)`).test(readLog(d, who));
  try {
    // requests one after another until every node has renewed three times (the evidence of their
    // start is past the max age by then); each must succeed
    const c = client(d);
    const deadline = Date.now() + 60000 * TIME_SCALE;
    let served = 0;
    while (!['proxy', 'worker1', 'worker2', 'client'].every((who) => renewed(who, 3))) {
      assert.ok(Date.now() < deadline, 'the nodes never renewed three times');
      const r = await c.completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 8, seed: served, stream: served % 2 === 1 });
      if (served % 2 === 1) {
        let done = false;
        for await (const k of r) if (k.choices[0]?.finish_reason) done = true;
        assert.ok(done, 'a stream ended without a finish_reason');
      } else {
        assert.equal(r.usage.completion_tokens, 8);
      }
      served++;
    }
    assert.ok(served > 0);
    assert.doesNotMatch(readLog(d, 'client'), /receipt does not verify|ignoring a worker/);
    assert.doesNotMatch(readLog(d, 'proxy'), /receipt does not verify|STALE|stale/);

    // joining now needs the proxy's renewed evidence (a worker, a gateway) and the workers'
    // renewed evidence relayed in worker_info (the gateway)
    const attest = ['--sim-key', path.join(d.state, 'platform.key'),
      '--trust-sim-keys', path.join(d.state, 'trusted-sim-keys.txt'),
      '--allow-measurements', path.join(d.state, 'measurements.txt'), '--max-evidence-age', String(maxAge)];
    const w = extraWorker(d, MODEL, [...attest, '--device', 'cpu']);
    await waitFor(w.err, /renewed the node identity/, 'extra worker log');
    const gw = await startVeil(['client', '--proxy', d.clients, '--listen', '127.0.0.1:0', '--wait-workers', '3', ...attest]);
    running.push(gw.proc);
    try {
      const r = await client(gw).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4 });
      assert.equal(r.usage.completion_tokens, 4);
      assert.doesNotMatch(gw.stderr(), /ignoring a worker/);
    } finally {
      assert.equal((await stopVeil(gw)).code, 0);
      w.proc.kill('SIGTERM');
    }
  } finally {
    assert.equal((await stopVeil(d)).code, 0);
  }
});

const haveGcore = spawnSync('sh', ['-c', 'command -v gcore']).status === 0;

// A sanitizer build reserves terabytes of address space: gcore takes minutes and writes a
// core of that size, too big to search.
const noDump = (!haveGcore && 'gcore (gdb) is not installed') ||
  (SANITIZED && 'the core dump of a sanitizer build is terabytes');

test('network: a canary in a prompt never reaches the proxy (logs, frames, memory)', { skip: noDump }, async () => {
  const frames = path.join(tmp, 'frames.bin');
  // the workers are stopped while both dumps are taken: a long dead-peer timeout keeps the
  // proxy from failing the request over meanwhile, however slow gcore is
  const d = await devnet('canary', ['--dump-frames', frames, '--peer-timeout', '3600']);
  const canary = `CANARY${Math.random().toString(36).slice(2, 12)}ZEBRA`;
  const dump = (pid, name) => {
    const out = path.join(d.dir, name);
    const r = spawnSync('gcore', ['-o', out, String(pid)], { encoding: 'utf8', timeout: 120000 * TIME_SCALE });
    assert.equal(r.status, 0, `gcore failed: ${r.stderr}`);
    const file = fs.readdirSync(d.dir).find((f) => f.startsWith(`${name}.`));
    const bytes = fs.readFileSync(path.join(d.dir, file));
    fs.rmSync(path.join(d.dir, file));
    return bytes;
  };
  try {
    const stream = await client(d).chat.completions.create({
      model: MODEL_NAME, stream: true, max_tokens: 300, logit_bias: { 2: -100 },
      messages: [{ role: 'user', content: `Remember the secret ${canary} and tell a story.` }],
    });
    const it = stream[Symbol.asyncIterator]();
    await it.next(); // the answer is flowing: the request is in the proxy's hands right now
    // freeze the workers so that the request stays in flight, whatever the dumps take: the
    // gateway keeps the HTTP request (its body, the prompt) until the answer ends
    const workers = [d.pid('worker1'), d.pid('worker2')];
    for (const pid of workers) process.kill(pid, 'SIGSTOP');
    let proxyCore, gatewayCore;
    try {
      proxyCore = dump(d.pid('proxy'), 'proxy-core');
      gatewayCore = dump(d.pid('client'), 'client-core');
    } finally {
      for (const pid of workers) process.kill(pid, 'SIGCONT');
    }
    let finish = null;
    for (;;) {
      const { done, value } = await it.next();
      if (done) break;
      finish = value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'length', 'the answer completed after the dumps');

    const needle = Buffer.from(canary);
    assert.ok(proxyCore.length > 100000, 'the proxy core dump is real');
    assert.equal(proxyCore.indexOf(needle), -1, 'canary found in the proxy memory');
    // the method works: the gateway, which seals the prompt, holds it
    assert.notEqual(gatewayCore.indexOf(needle), -1, 'canary not found in the gateway memory (control)');
    const relayed = fs.readFileSync(frames);
    assert.ok(relayed.length > 1000, 'frames were dumped');
    assert.equal(relayed.indexOf(needle), -1, 'canary found in the relayed frames');
    assert.ok(!readLog(d, 'proxy').includes(canary), 'canary found in the proxy log');
    assert.match(readLog(d, 'proxy'), /done model=stories260K prompt_tokens=\d+/);
  } finally {
    assert.equal((await stopVeil(d)).code, 0);
  }
});

test('network: kill -9 of a worker under load: no request hangs, unstarted ones fail over', async () => {
  const d = await devnet('kill');
  try {
    const c = client(d);
    let firstChunk;
    const flowing = new Promise((r) => { firstChunk = r; });
    const long = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 200, logit_bias: { 2: -100 } };
    const streamed = Array.from({ length: 8 }, async (_, i) => {
      let chunks = 0;
      try {
        const s = await c.completions.create({ ...long, seed: i, stream: true });
        for await (const k of s) { chunks++; firstChunk(); if (k.choices[0]?.finish_reason) return { ok: true, chunks }; }
        return { ok: false, chunks, error: 'stream ended without a finish_reason' };
      } catch (e) {
        return { ok: false, chunks, error: String(e.message) };
      }
    });
    const whole = Array.from({ length: 8 }, async (_, i) => {
      try {
        const r = await c.completions.create({ ...long, seed: 100 + i });
        return { ok: r.usage.completion_tokens === 200 };
      } catch (e) {
        return { ok: false, error: String(e.message) };
      }
    });
    await withTimeout(flowing, 30000, 'first chunk');
    process.kill(d.pid('worker1'), 'SIGKILL');
    const s = await withTimeout(Promise.all(streamed), 120000, 'streamed requests');
    const w = await withTimeout(Promise.all(whole), 120000, 'whole requests');
    // a stream may end with an error only after it had started (no failover possible then)
    for (const r of s) if (!r.ok) assert.ok(r.chunks > 0 && /worker failed mid-answer|incomplete/.test(r.error), JSON.stringify(r));
    // whole answers travel in one piece at the end: a dead worker had sent nothing, so every
    // one of them was failed over and completed
    for (const r of w) assert.ok(r.ok, JSON.stringify(r));
    await waitFor(() => readLog(d, 'proxy'), /worker@[0-9.:]+ closed: (peer closed the connection|TLS: unexpected eof|.*reset)/i, 'proxy log');
    await stillServes(d);
    const after = await Promise.all(Array.from({ length: 6 }, (_, i) => c.completions.create({
      model: MODEL_NAME, prompt: 'Once', max_tokens: 5, seed: i })));
    for (const r of after) assert.equal(r.usage.completion_tokens, 5);
  } finally {
    assert.equal((await stopVeil(d)).code, 0);
  }
});

test('network: 100 concurrent streams through one proxy', async () => {
  // devnet passes --device on to its workers: the CPU, named as such in their logs
  const d = await devnet('hundred', ['--device', 'cpu']);
  try {
    for (const who of ['worker1', 'worker2']) assert.match(readLog(d, who), /worker: model .*, on cpu/);
    const c = client(d);
    const texts = await withTimeout(Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const chunks = await collectStream(await c.completions.create({
        model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 16, logit_bias: { 2: -100 }, seed: i, stream: true,
        stream_options: { include_usage: true },
      }));
      const last = chunks[chunks.length - 1];
      assert.equal(last.usage.completion_tokens, 16);
      return chunks.filter((k) => k.choices.length).map((k) => k.choices[0].text).join('');
    })), 180000, '100 streams');
    assert.equal(texts.length, 100);
    // the same seed alone gives the same text: nothing was mixed between streams
    const alone = await c.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 16,
      logit_bias: { 2: -100 }, seed: 42 });
    assert.equal(texts[42], alone.choices[0].text);
  } finally {
    assert.equal((await stopVeil(d)).code, 0);
  }
});

test('network: a client that disconnects mid-stream cancels the worker\'s generation', async () => {
  const d = await devnet('cancel');
  try {
    const body = JSON.stringify({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 480, stream: true,
      logit_bias: { 2: -100 } });
    const ctl = new AbortController();
    const res = await fetch(`${d.url}/v1/completions`, { method: 'POST', body, signal: ctl.signal,
      headers: { 'content-type': 'application/json' } });
    const reader = res.body.getReader();
    await reader.read(); // the first chunk: generation is under way
    ctl.abort();
    const workers = () => readLog(d, 'worker1') + readLog(d, 'worker2');
    await waitFor(workers, /worker: stream \d+ cancelled/, 'worker logs');
    await waitFor(() => readLog(d, 'proxy'), /worker error 104: cancelled/, 'proxy log');
    await stillServes(d);
  } finally {
    assert.equal((await stopVeil(d)).code, 0);
  }
});

test('network: a request past the gateway\'s --request-timeout ends with 504 timeout; the network serves on', async () => {
  const d = await devnet('timeout');
  const attest = ['--sim-key', path.join(d.state, 'platform.key'),
    '--trust-sim-keys', path.join(d.state, 'trusted-sim-keys.txt'),
    '--allow-measurements', path.join(d.state, 'measurements.txt')];
  const gw = await startVeil(['client', '--proxy', d.clients, '--listen', '127.0.0.1:0', '--wait-workers', '2',
    '--request-timeout', '0.001', ...attest]);
  running.push(gw.proc);
  try {
    // a long generation (EOS banned) cannot finish within 1 ms: the worker (or, when the 1 ms
    // is gone before a worker takes it, the proxy) ends it with error 105
    const body = JSON.stringify({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 480,
      logit_bias: { 2: -100 } });
    for (const stream of [false, true]) {
      const r = await postRaw(gw, '/v1/completions', JSON.stringify({ ...JSON.parse(body), stream }));
      if (stream) {
        // an error body (504) before the first chunk, an SSE error event after
        assert.match(r.text, /timed out.*code 105/, r.text);
      } else {
        assertErrorBody(r, 504, null);
        assert.match(r.json.error.message, /timed out.*code 105/);
      }
    }
    const logs = () => readLog(d, 'worker1') + readLog(d, 'worker2') + readLog(d, 'proxy');
    await waitFor(logs, /worker: stream \d+ timed out|proxy: request timed out before a worker took it/, 'worker and proxy logs');
    await stillServes(d);
  } finally {
    assert.equal((await stopVeil(gw)).code, 0);
    assert.equal((await stopVeil(d)).code, 0);
  }
});

test('network: a worker that hangs is found dead by heartbeats and its requests fail over', async () => {
  const d = await devnet('hang');
  const pid = d.pid('worker1');
  try {
    process.kill(pid, 'SIGSTOP');
    const c = client(d);
    const rs = await withTimeout(Promise.all(Array.from({ length: 4 }, (_, i) => c.completions.create({
      model: MODEL_NAME, prompt: 'Once', max_tokens: 6, seed: i }))), 60000, 'requests around a hung worker');
    for (const r of rs) assert.equal(r.usage.completion_tokens, 6);
    await waitFor(() => readLog(d, 'proxy'), /closed: peer silent for 5 s: dead/, 'proxy log');
  } finally {
    // SIGKILL ends a stopped process too; a SIGCONT after it races with devnet reaping the pid
    process.kill(pid, 'SIGKILL');
    assert.equal((await stopVeil(d)).code, 0);
  }
});

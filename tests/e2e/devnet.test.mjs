// End to end through the network: `veil devnet` (a proxy, two workers on the bundled model
// and a client gateway, over mutual RA-TLS with sim attestation, prompts sealed end to end),
// driven by the official OpenAI SDK as an app would, compared with `veil serve` on the same
// model: greedy answers must be identical, streamed or not.
//
// Synchronisation is by events ("ready:" lines, stream chunks, process exit); every wait is
// bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  VEIL, MODEL, MODEL_NAME, startVeil, stopVeil, client, postRaw, assertErrorBody, collectStream,
} from './lib.mjs';

const CHAT = [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about a dog.' }];

let net;   // the devnet
let solo;  // veil serve, for reference answers
before(async () => {
  [net, solo] = await Promise.all([
    startVeil(['devnet', '--listen', '127.0.0.1:0', '--model', MODEL]),
    startVeil(['serve', MODEL, '--listen', '127.0.0.1:0', '--threads', '1']),
  ]);
});
after(async () => {
  if (net) await stopVeil(net);
  if (solo) await stopVeil(solo);
});

test('devnet: prints its processes and a ready URL', () => {
  assert.match(net.stdout(), /^devnet: proxy pid \d+$/m);
  assert.match(net.stdout(), /^devnet: worker1 pid \d+$/m);
  assert.match(net.stdout(), /^devnet: worker2 pid \d+$/m);
  assert.match(net.stdout(), /^devnet: client pid \d+$/m);
  assert.match(net.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

// Payments: the ledger node devnet started (its URL and the client's channel on stdout).
const ledgerOf = () => {
  const m = net.stdout().match(/^devnet: ledger (\S+) channel (\S+)$/m);
  assert.ok(m, net.stdout());
  return { url: m[1], channel: m[2] };
};
const getJson = async (url) => {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return r.json();
};
// devnet_ledger.h and payee.h; the registry's defaults: price 20, worker fee 19 per token
const FUNDS = 10_000_000_000n, DEPOSIT = 5_000_000_000n, STAKE = 1_000_000_000n;
const PROXY_FUNDS = 30_000_000_000n, PAYOUT_LOCK = 3_000_000_000n;
const walletOf = (name) => {
  const dir = net.stdout().match(/^devnet: proxy workers \S+ clients \S+ dir (\S+)$/m)[1];
  const out = execFileSync(VEIL, ['wallet', 'show', '--key', path.join(dir, `${name}.key`)]).toString();
  return out.match(/^raw\s+(\S+)$/m)[1];
};
// polls fn() until it returns true, bounded (the proxy and the workers redeem every 2 s)
const settle = async (fn, what) => {
  for (const deadline = Date.now() + 20000; Date.now() < deadline;) {
    if (await fn()) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail(`not settled: ${what}`);
};

// First among the tests that send requests: the channel's `paid` starts at 0 here.
test('devnet: client charged, worker paid, proxy keeps the difference, total conserved', async () => {
  const { url, channel } = ledgerOf();
  const c = client(net);
  let spent = 0n, fees = 0n;
  for (let i = 0; i < 4; i++) {
    const r = await c.completions.create({ model: MODEL_NAME, prompt: 'Once upon', max_tokens: 4 + i });
    assert.ok(r.usage.cost > 0);
    spent += BigInt(r.usage.cost);
    fees += 19n * BigInt(r.usage.prompt_tokens + r.usage.completion_tokens);
  }
  let ch;
  await settle(async () => {
    ch = await getJson(`${url}/v1/channel/${channel}`);
    return BigInt(ch.paid) >= spent;
  }, 'the client channel');
  assert.equal(BigInt(ch.paid), spent);
  assert.equal(BigInt(ch.held), DEPOSIT + STAKE - spent);
  let worker;
  await settle(async () => {
    worker = await getJson(`${url}/v1/account/${walletOf('worker')}`);
    return BigInt(worker.balance) >= fees;
  }, 'the workers\' earnings');
  assert.equal(BigInt(worker.balance), fees);
  const payer = await getJson(`${url}/v1/account/${ch.payer}`);
  const proxy = await getJson(`${url}/v1/account/${ch.payee}`);
  assert.equal(ch.payee, walletOf('proxy'));
  assert.equal(BigInt(payer.balance), FUNDS - DEPOSIT - STAKE);
  // the proxy got the charges and locked PAYOUT_LOCK per worker it paid (one or two)
  const locked = PROXY_FUNDS + spent - BigInt(proxy.balance);
  assert.ok(locked === PAYOUT_LOCK || locked === 2n * PAYOUT_LOCK, `proxy locked ${locked}`);
  assert.ok(spent - fees > 0n); // what the proxy keeps: price minus worker fee
  const status = await getJson(`${url}/v1/status`);
  assert.equal(BigInt(status.supply), FUNDS + PROXY_FUNDS);
  // every nano-unit is in a wallet or a channel: the payout channels hold locked - fees
  assert.equal(BigInt(payer.balance) + BigInt(ch.held) + BigInt(proxy.balance) + (locked - fees) +
    BigInt(worker.balance), FUNDS + PROXY_FUNDS);
});

test('devnet: a client without funds gets 402 with an OpenAI error body', async () => {
  const { url } = ledgerOf();
  const m = net.stdout().match(/^devnet: proxy workers \S+ clients (\S+) dir (\S+)$/m);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'veil-poor-'));
  const key = path.join(tmp, 'poor.key');
  execFileSync(VEIL, ['wallet', 'new', '--key', key]);
  const dir = m[2];
  const poor = await startVeil(['client', '--proxy', m[1], '--listen', '127.0.0.1:0', '--chain', url,
    '--wallet', key, '--channel', `0:${'11'.repeat(32)}`, '--sim-key', path.join(dir, 'platform.key'),
    '--trust-sim-keys', path.join(dir, 'trusted-sim-keys.txt'),
    '--allow-measurements', path.join(dir, 'measurements.txt')]);
  try {
    const r = await postRaw(poor, '/v1/completions', JSON.stringify({ model: MODEL_NAME, prompt: 'Once', max_tokens: 2 }));
    assertErrorBody(r, 402, null);
    assert.equal(r.json.error.code, 'insufficient_quota');
    await assert.rejects(client(poor).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 2 }),
      (e) => e.status === 402);
  } finally {
    assert.equal((await stopVeil(poor)).code, 0, poor.stderr());
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('devnet: /v1/models lists the live model', async () => {
  const list = await client(net).models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL_NAME]);
  const one = await client(net).models.retrieve(MODEL_NAME);
  assert.equal(one.id, MODEL_NAME);
  await assert.rejects(client(net).models.retrieve('gpt-9'), (e) => e.status === 404);
});

test('devnet: chat, not streamed, equals veil serve (greedy)', async () => {
  const req = { model: MODEL_NAME, messages: CHAT, max_tokens: 40, temperature: 0 };
  const [a, b] = await Promise.all([client(net).chat.completions.create(req), client(solo).chat.completions.create(req)]);
  assert.equal(a.object, 'chat.completion');
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.ok(a.choices[0].message.content.length > 0);
  assert.equal(a.usage.completion_tokens, b.usage.completion_tokens);
  assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
});

test('devnet: chat, streamed, equals the whole answer; usage chunk', async () => {
  const req = { model: MODEL_NAME, messages: CHAT, max_tokens: 40, temperature: 0 };
  const whole = await client(net).chat.completions.create(req);
  const chunks = await collectStream(await client(net).chat.completions.create({
    ...req, stream: true, stream_options: { include_usage: true },
  }));
  const text = chunks.filter((k) => k.choices.length).map((k) => k.choices[0].delta.content ?? '').join('');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, whole.usage.completion_tokens);
});

test('devnet: completions with a seed, streamed and not, equal veil serve', async () => {
  const req = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 30, seed: 7, temperature: 0.8 };
  const [a, b] = await Promise.all([client(net).completions.create(req), client(solo).completions.create(req)]);
  assert.equal(a.choices[0].text, b.choices[0].text);
  const chunks = await collectStream(await client(net).completions.create({ ...req, stream: true }));
  assert.equal(chunks.map((k) => k.choices[0].text).join(''), a.choices[0].text);
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, a.choices[0].finish_reason);
});

test('devnet: bad requests are OpenAI errors (400 from the gateway, 404 unknown model)', async () => {
  assertErrorBody(await postRaw(net, '/v1/chat/completions', '{"messages": ['), 400, null);
  assertErrorBody(await postRaw(net, '/v1/chat/completions', JSON.stringify({ messages: CHAT, temperature: 'hot' })), 400, 'temperature');
  // the worker rejects what only it can check (the prompt does not fit): still a clean 400
  assertErrorBody(await postRaw(net, '/v1/completions', JSON.stringify({ prompt: 'once '.repeat(700) })), 400, 'prompt');
  await assert.rejects(client(net).chat.completions.create({ model: 'gpt-9', messages: CHAT }),
    (e) => e.status === 404);
  const ok = await client(net).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 3 });
  assert.equal(ok.usage.completion_tokens, 3);
});

// The gateway prices each worker-signed receipt at the registry's prices: devnet's ledger keeps
// a new ledger's (src/ledger/registry.c): 20 nano-units per token, every class at 1.0x, so the
// cost is 20 x (prompt + completion) tokens.
const PRICE_PER_TOKEN = 20;
const costOf = (u) => PRICE_PER_TOKEN * (u.prompt_tokens + u.completion_tokens);

test('devnet: usage.cost is the receipt at registry prices, streamed and not', async () => {
  const req = { model: MODEL_NAME, messages: CHAT, max_tokens: 9, temperature: 0 };
  const whole = await client(net).chat.completions.create(req);
  assert.equal(whole.usage.cost, costOf(whole.usage));
  assert.ok(whole.usage.cost > 0);
  const chunks = await collectStream(await client(net).chat.completions.create({
    ...req, stream: true, stream_options: { include_usage: true },
  }));
  const last = chunks[chunks.length - 1];
  assert.equal(last.usage.cost, costOf(last.usage));
  assert.equal(last.usage.cost, whole.usage.cost);
  for (const k of chunks.slice(0, -1)) assert.equal(k.usage, null);
  const done = await client(net).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4 });
  assert.equal(done.usage.cost, costOf(done.usage));
});

test('devnet: requests spread over both workers and all complete', async () => {
  const c = client(net);
  const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => c.completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 12, seed: i,
  })));
  for (const r of rs) assert.equal(r.usage.completion_tokens, 12);
});

// Crash safety of the proxy's accounting: kill -9 once it has kept the client's vouchers (their
// redemption is batched, so the ledger may not have them yet); a new proxy on the same wallet
// and accounting file redeems them at start: no charge lost, none counted twice.
test('devnet: a proxy killed with -9 loses no charge: its successor redeems from its accounts', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'veil-crash-'));
  const logs = path.join(tmp, 'logs');
  fs.mkdirSync(logs);
  const d = await startVeil(['devnet', '--listen', '127.0.0.1:0', '--model', MODEL, '--workers', '1',
    '--dir', path.join(tmp, 'state'), '--log-dir', logs]);
  let again = null;
  try {
    const out = d.stdout();
    const [, url, channel] = out.match(/^devnet: ledger (\S+) channel (\S+)$/m);
    const state = out.match(/^devnet: proxy workers \S+ clients \S+ dir (\S+)$/m)[1];
    const proxyPid = Number(out.match(/^devnet: proxy pid (\d+)$/m)[1]);
    let spent = 0n;
    for (let i = 0; i < 3; i++) {
      const r = await client(d).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 3 + i });
      spent += BigInt(r.usage.cost);
    }
    await settle(() => fs.readFileSync(path.join(logs, 'proxy.log'), 'utf8')
      .includes(`charge voucher kept, total ${spent}`), 'the proxy kept the last voucher');
    process.kill(proxyPid, 'SIGKILL');
    again = await startVeil(['proxy', '--workers', '127.0.0.1:0', '--clients', '127.0.0.1:0', '--chain', url,
      '--wallet', path.join(state, 'proxy.key'), '--accounts', path.join(state, 'proxy-accounts.db'),
      '--sim-key', path.join(state, 'platform.key'), '--trust-sim-keys', path.join(state, 'trusted-sim-keys.txt'),
      '--allow-measurements', path.join(state, 'measurements.txt')]);
    // settled before its ready line
    const ch = await getJson(`${url}/v1/channel/${channel}`);
    assert.equal(BigInt(ch.paid), spent);
  } finally {
    if (again) assert.equal((await stopVeil(again)).code, 0, again.stderr());
    await stopVeil(d);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('devnet: --no-payments runs without a ledger; answers still carry their cost', async () => {
  const free = await startVeil(['devnet', '--listen', '127.0.0.1:0', '--model', MODEL, '--workers', '1', '--no-payments']);
  try {
    assert.doesNotMatch(free.stdout(), /^devnet: ledger/m);
    const r = await client(free).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 3 });
    assert.equal(r.usage.cost, costOf(r.usage));
  } finally {
    assert.equal((await stopVeil(free)).code, 0, free.stderr());
  }
});

test('devnet: SIGTERM stops every process and exits 0', async () => {
  const { code } = await stopVeil(net);
  assert.equal(code, 0, net.stderr());
  net = null;
});

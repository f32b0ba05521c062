// End to end: `veil serve` on the bundled stories260K model, driven by the official OpenAI
// SDK (chat, completions, streaming, stop strings, n > 1, logprobs, seeds, 32 concurrent
// clients) and by raw HTTP for the error paths (malformed and oversized bodies, unknown model,
// slow and vanishing clients, a full queue, SIGTERM drain, heartbeats).
//
// Synchronisation is by events (the "ready:" line, stream chunks, process exit) or by polling
// /metrics; every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import {
  MODEL, MODEL_NAME, withTimeout, startVeil, stopVeil, client, postRaw, assertErrorBody, collectStream,
} from './lib.mjs';

const MAX_BODY = 65536;

// ---- helpers --------------------------------------------------------------------------------

const startServer = (extra = []) => startVeil(['serve', MODEL, '--listen', '127.0.0.1:0', ...extra], { ms: 30000 });
const stopServer = (s) => stopVeil(s);

async function metrics(s) {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// Polls until check(metrics) is true; bounded.
async function waitMetrics(s, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = await metrics(s);
    if (check(m)) return m;
    if (Date.now() > deadline) throw new Error(`metrics never satisfied the check: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 10)); // polling interval, not synchronisation
  }
}

const CHAT = [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about a cat.' }];

// ---- the shared server ------------------------------------------------------------------------

let srv;
before(async () => { srv = await startServer(['--max-body', String(MAX_BODY)]); });
after(async () => { if (srv) await stopServer(srv); }); // only when a test failed before the last one



test('models: list and retrieve', async () => {
  const c = client(srv);
  const list = await c.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL_NAME]);
  const m = await c.models.retrieve(MODEL_NAME);
  assert.equal(m.id, MODEL_NAME);
  assert.equal(m.object, 'model');
  await assert.rejects(c.models.retrieve('nope'), (e) => e.status === 404);
  const h = await fetch(`${srv.url}/health`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok' });
});

test('chat: non-streaming response shape and usage', async () => {
  const r = await client(srv).chat.completions.create({
    model: MODEL_NAME, messages: CHAT, max_tokens: 24, seed: 7,
  });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL_NAME);
  assert.ok(Number.isInteger(r.created));
  assert.equal(r.choices.length, 1);
  const ch = r.choices[0];
  assert.equal(ch.index, 0);
  assert.equal(ch.message.role, 'assistant');
  assert.equal(typeof ch.message.content, 'string');
  assert.ok(['stop', 'length'].includes(ch.finish_reason));
  assert.ok(r.usage.prompt_tokens > 10);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 24);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(Number.isInteger(r.usage.prompt_tokens_details.cached_tokens));
  if (ch.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 24);
});

test('chat: streaming equals non-streaming for the same seed; usage chunk; prefix cache', async () => {
  const c = client(srv);
  const req = { model: MODEL_NAME, messages: CHAT, max_tokens: 30, seed: 11, temperature: 0.9 };
  const whole = await c.chat.completions.create(req);
  const chunks = await collectStream(await c.chat.completions.create({
    ...req, stream: true, stream_options: { include_usage: true },
  }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.filter((k) => k.choices.length).map((k) => k.choices[0].delta.content ?? '').join('');
  assert.equal(text, whole.choices[0].message.content);
  const finish = chunks.filter((k) => k.choices.length && k.choices[0].finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].choices[0].finish_reason, whole.choices[0].finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, whole.usage.completion_tokens);
  assert.equal(last.usage.prompt_tokens, whole.usage.prompt_tokens);
  // the same prompt again: its full KV blocks come from the prefix cache
  assert.ok(last.usage.prompt_tokens_details.cached_tokens > 0, JSON.stringify(last.usage));
  for (const k of chunks.slice(0, -1)) assert.equal(k.usage, null);
  assert.ok(chunks.every((k) => k.id === chunks[0].id && k.object === 'chat.completion.chunk'));
});

test('completions: greedy text, streaming and not', async () => {
  const c = client(srv);
  const req = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 20, temperature: 0 };
  const r = await c.completions.create(req);
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.startsWith(', there was a little girl named Lily'), r.choices[0].text);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 20);
  const chunks = await collectStream(await c.completions.create({ ...req, stream: true }));
  assert.equal(chunks.map((k) => k.choices[0].text).join(''), r.choices[0].text);
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'length');
  // several prompts: one choice each, in order
  const two = await c.completions.create({ ...req, prompt: ['Once upon a time', 'The dog'], max_tokens: 8 });
  assert.deepEqual(two.choices.map((ch) => ch.index), [0, 1]);
  assert.ok(r.choices[0].text.startsWith(two.choices[0].text));
});

test('stop strings end the text before them', async () => {
  const c = client(srv);
  const base = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
  const full = (await c.completions.create(base)).choices[0].text;
  const at = full.indexOf('Lily');
  assert.ok(at > 0, full);
  const r = await c.completions.create({ ...base, stop: ['Lily', 'zzz'] });
  assert.equal(r.choices[0].text, full.slice(0, at));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await collectStream(await c.completions.create({ ...base, stop: 'Lily', stream: true }));
  assert.equal(s.map((k) => k.choices[0].text).join(''), full.slice(0, at));
});

test('n > 1: independent choices; choice 0 equals a lone request with the same seed', async () => {
  const c = client(srv);
  const req = { model: MODEL_NAME, messages: CHAT, max_tokens: 16, seed: 1234, temperature: 1 };
  const r = await c.chat.completions.create({ ...req, n: 3 });
  assert.deepEqual(r.choices.map((ch) => ch.index), [0, 1, 2]);
  const alone = await c.chat.completions.create(req);
  assert.equal(r.choices[0].message.content, alone.choices[0].message.content);
  const seeded1 = await c.chat.completions.create({ ...req, seed: 1235 });
  assert.equal(r.choices[1].message.content, seeded1.choices[0].message.content);
  assert.equal(r.usage.prompt_tokens, alone.usage.prompt_tokens);
  const chunks = await collectStream(await c.chat.completions.create({ ...req, n: 2, stream: true }));
  const texts = ['', ''];
  const finished = new Set();
  for (const k of chunks) {
    for (const ch of k.choices) {
      texts[ch.index] += ch.delta.content ?? '';
      if (ch.finish_reason) finished.add(ch.index);
    }
  }
  assert.deepEqual([...finished].sort(), [0, 1]);
  assert.equal(texts[0], r.choices[0].message.content);
  assert.equal(texts[1], r.choices[1].message.content);
});

test('logprobs: chat and completions shapes', async () => {
  const c = client(srv);
  const r = await c.chat.completions.create({
    model: MODEL_NAME, messages: CHAT, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3,
  });
  const content = r.choices[0].logprobs.content;
  assert.ok(content.length >= 1 && content.length <= 9);
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.ok(Array.isArray(e.bytes));
    assert.ok(e.top_logprobs.length >= 1 && e.top_logprobs.length <= 3);
    // greedy: the chosen token is the most likely one
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6);
    for (let i = 1; i < e.top_logprobs.length; i++) assert.ok(e.top_logprobs[i].logprob <= e.top_logprobs[i - 1].logprob);
  }
  const none = await c.chat.completions.create({ model: MODEL_NAME, messages: CHAT, max_tokens: 2 });
  assert.equal(none.choices[0].logprobs, null);
  const cr = await c.completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 5, temperature: 0, logprobs: 2 });
  const lp = cr.choices[0].logprobs;
  assert.equal(lp.tokens.length, lp.token_logprobs.length);
  assert.equal(lp.tokens.length, lp.top_logprobs.length);
  assert.equal(lp.tokens.length, lp.text_offset.length);
  assert.ok(lp.top_logprobs.every((o) => Object.keys(o).length >= 1 && Object.keys(o).length <= 2));
  const st = await collectStream(await c.chat.completions.create({
    model: MODEL_NAME, messages: CHAT, max_tokens: 4, temperature: 0, logprobs: true, stream: true,
  }));
  const streamed = st.flatMap((k) => k.choices.flatMap((ch) => ch.logprobs?.content ?? []));
  assert.ok(streamed.length >= 1);
  assert.equal(streamed[0].token, content[0].token);
});

test('seeds: same seed gives the same text, other seeds other texts', async () => {
  const c = client(srv);
  const req = { model: MODEL_NAME, prompt: 'The little bird', max_tokens: 24, temperature: 1, seed: 99 };
  const a = (await c.completions.create(req)).choices[0].text;
  const b = (await c.completions.create(req)).choices[0].text;
  assert.equal(a, b);
  const others = [];
  for (const seed of [1, 2, 3]) others.push((await c.completions.create({ ...req, seed })).choices[0].text);
  assert.ok(others.some((t) => t !== a), 'three other seeds all gave the same text');
});

test('32 concurrent clients with fixed seeds get the texts they get alone', async () => {
  const c = client(srv);
  const reqs = Array.from({ length: 32 }, (_, i) => ({
    model: MODEL_NAME, max_tokens: 32, temperature: 1, seed: 1000 + i,
    messages: [{ role: 'user', content: `Tell story number ${i % 5}.` }],
  }));
  const alone = [];
  for (const r of reqs) alone.push((await c.chat.completions.create(r)).choices[0].message.content);
  const together = await Promise.all(reqs.map(async (r, i) => {
    if (i % 2) {
      const chunks = await collectStream(await c.chat.completions.create({ ...r, stream: true }));
      return chunks.map((k) => k.choices[0]?.delta.content ?? '').join('');
    }
    return (await c.chat.completions.create(r)).choices[0].message.content;
  }));
  assert.deepEqual(together, alone);
});

test('errors: malformed JSON, wrong types, unknown model, limits (raw HTTP)', async () => {
  assertErrorBody(await postRaw(srv, '/v1/chat/completions', '{"messages": ['), 400, null);
  assertErrorBody(await postRaw(srv, '/v1/chat/completions', '[]'), 400, null);
  assertErrorBody(await postRaw(srv, '/v1/chat/completions', JSON.stringify({ messages: 'hi' })), 400, 'messages');
  assertErrorBody(await postRaw(srv, '/v1/chat/completions', JSON.stringify({ messages: CHAT, temperature: 'hot' })), 400, 'temperature');
  assertErrorBody(await postRaw(srv, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 0 })), 400, 'max_tokens');
  assertErrorBody(await postRaw(srv, '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 100000 })), 400, 'max_tokens');
  assertErrorBody(await postRaw(srv, '/v1/completions', JSON.stringify({ prompt: 'x', logit_bias: { 99999: 1 } })), 400, 'logit_bias');
  assertErrorBody(await postRaw(srv, '/v1/completions', JSON.stringify({ prompt: 'x', n: 129 })), 400, 'n');
  assertErrorBody(await postRaw(srv, '/v1/completions', JSON.stringify({ prompt: 'once '.repeat(700) })), 400, 'prompt');
  const unknown = await postRaw(srv, '/v1/chat/completions', JSON.stringify({ model: 'gpt-9', messages: CHAT }));
  assertErrorBody(unknown, 404, 'model');
  assert.equal(unknown.json.error.code, 'model_not_found');
  const big = await postRaw(srv, '/v1/completions', JSON.stringify({ prompt: 'x'.repeat(MAX_BODY + 10) }));
  assertErrorBody(big, 413, null);
  const get = await fetch(`${srv.url}/v1/chat/completions`);
  assert.equal(get.status, 405);
  assert.ok((await get.json()).error);
  const nf = await fetch(`${srv.url}/nope`);
  assert.equal(nf.status, 404);
  assert.ok((await nf.json()).error);
  // the SDK turns the body into its error types, param included
  await assert.rejects(client(srv).chat.completions.create({ model: MODEL_NAME, messages: CHAT, top_p: 3 }),
    (e) => e.status === 400 && e.param === 'top_p' && e.type === 'invalid_request_error');
  await assert.rejects(client(srv).chat.completions.create({ model: 'gpt-9', messages: CHAT }),
    (e) => e.status === 404 && e.code === 'model_not_found');
  // and everyone else is still served
  const ok = await client(srv).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 3 });
  assert.equal(ok.usage.completion_tokens, 3);
  const m = await metrics(srv);
  assert.ok(m['veil_http_requests_total{code="400"}'] >= 9);
  assert.ok(m['veil_http_requests_total{code="404"}'] >= 2);
  assert.ok(m['veil_http_requests_total{code="413"}'] >= 1);
});

test('a slow client does not hold up others', async () => {
  const body = JSON.stringify({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
  const { port } = new URL(srv.url);
  const sock = net.connect(Number(port), '127.0.0.1');
  await withTimeout(new Promise((r) => sock.once('connect', r)), 10000, 'connect');
  let reply = '';
  sock.on('data', (d) => { reply += d; });
  const closed = new Promise((r) => sock.once('close', r));
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
             `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`);
  // meanwhile, a normal client is served in full
  const r = await client(srv).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 5 });
  assert.equal(r.usage.completion_tokens, 5);
  // the rest of the body; the socket stays open for writing (a half-close reads as leaving)
  sock.write(body.slice(10));
  await withTimeout(closed, 20000, 'slow client reply');
  assert.match(reply, /^HTTP\/1\.1 200/);
  assert.match(reply, /"text_completion"/);
});

test('a client that disconnects mid-stream is cancelled and its KV freed', async () => {
  const before = await metrics(srv);
  const { port } = new URL(srv.url);
  // EOS banned, so only the cancellation can end it before 480 tokens
  const body = JSON.stringify({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 480, stream: true, logit_bias: { 2: -100 },
  });
  await withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: Number(port), path: '/v1/completions', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', () => {});
    req.end(body);
    req.on('close', resolve);
    req.on('timeout', reject);
  }), 20000, 'first stream chunk');
  const m = await waitMetrics(srv, (x) => x.veil_active_requests === 0 && x.veil_running_sequences === 0 &&
    x.veil_kv_bytes_used === 0);
  assert.equal(m.veil_queue_depth, 0);
  // cancelled: far fewer than 480 tokens were generated for it
  assert.ok(m.veil_completion_tokens_total - before.veil_completion_tokens_total < 480,
    `${m.veil_completion_tokens_total - before.veil_completion_tokens_total} tokens generated`);
  const ok = await client(srv).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 2 });
  assert.equal(ok.usage.completion_tokens, 2);
});

test('metrics: Prometheus text with histograms and gauges', async () => {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  for (const name of ['veil_http_requests_total', 'veil_prompt_tokens_total', 'veil_prompt_tokens_cached_total',
    'veil_completion_tokens_total', 'veil_queue_depth', 'veil_running_sequences', 'veil_kv_bytes_used',
    'veil_time_to_first_token_seconds', 'veil_time_per_output_token_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  const m = await metrics(srv);
  assert.ok(m['veil_time_to_first_token_seconds_count'] > 0);
  assert.equal(m['veil_time_to_first_token_seconds_bucket{le="+Inf"}'], m['veil_time_to_first_token_seconds_count']);
  assert.ok(m.veil_kv_bytes_total > 0);
  assert.ok(m.veil_prompt_tokens_cached_total > 0);
});

test('the shared server exits 0 on SIGTERM (leak-free under ASan: VEIL_BIN=build/asan/veil)', async () => {
  const { code } = await stopServer(srv);
  assert.equal(code, 0, srv.stderr());
  srv = null;
});

// ---- dedicated servers -----------------------------------------------------------------------

test('a full queue is a 503 with Retry-After', async () => {
  const s = await startServer(['--max-running', '1', '--max-queue', '0']);
  try {
    // the first choice takes the only slot, the second finds no room
    const r = await postRaw(s, '/v1/completions', JSON.stringify({ prompt: 'Once', max_tokens: 4, n: 2 }));
    assertErrorBody(r, 503, null);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    await assert.rejects(client(s).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4, n: 2 }),
      (e) => e.status === 503);
    const ok = await client(s).completions.create({ model: MODEL_NAME, prompt: 'Once', max_tokens: 4 });
    assert.equal(ok.usage.completion_tokens, 4);
    await waitMetrics(s, (x) => x.veil_active_requests === 0 && x.veil_kv_bytes_used === 0);
  } finally {
    assert.equal((await stopServer(s)).code, 0);
  }
});

test('heartbeats keep an idle stream alive and the SDK ignores them', async () => {
  const s = await startServer(['--heartbeat', '0.002']);
  try {
    // generating nothing but BOS (a control token, not shown) keeps the stream silent
    const body = JSON.stringify({ prompt: 'Once', max_tokens: 400, temperature: 0, logit_bias: { 1: 100 }, stream: true });
    const res = await fetch(`${s.url}/v1/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const raw = await res.text();
    assert.match(raw, /^: ping$/m);
    assert.match(raw, /data: \[DONE\]\n\n$/);
    const chunks = await collectStream(await client(s).completions.create({
      model: MODEL_NAME, prompt: 'Once', max_tokens: 400, temperature: 0, logit_bias: { 1: 100 }, stream: true,
    }));
    assert.equal(chunks.map((k) => k.choices[0].text).join(''), '');
    assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'length');
  } finally {
    assert.equal((await stopServer(s)).code, 0);
  }
});

test('SIGTERM drains: an in-flight stream completes, then the server exits 0', async () => {
  const s = await startServer(['--drain-timeout', '30']);
  const stream = await client(s).completions.create({
    model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 200, temperature: 0, stream: true,
  });
  let text = '';
  let finish = null;
  let signalled = false;
  for await (const k of stream) {
    if (!signalled) { s.proc.kill('SIGTERM'); signalled = true; }
    text += k.choices[0].text;
    finish = k.choices[0].finish_reason ?? finish;
  }
  assert.ok(signalled);
  assert.ok(['length', 'stop'].includes(finish), `finish ${finish}`);
  assert.ok(text.startsWith(', there was a little girl named Lily'), text);
  const { code } = await withTimeout(s.exited, 60000, 'exit after drain');
  assert.equal(code, 0, s.stderr());
});

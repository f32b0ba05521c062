// End to end, crash safety of payments (issue 6) with real processes on loopback:
//   - kill -9 of the proxy at seeded random points while paid requests flow, restarted each
//     time on the same ports, wallet and accounting file: `veil chain verify` passes, the
//     client's channel ends paid exactly the cost of the answers the client got (nothing lost,
//     nothing counted twice), the proxy's accounting file agrees with the ledger, every voucher
//     a proxy said it kept is redeemed, and the workers' payout key keeps one payout channel
//     through all the proxy's restarts, paid what the proxy's accounts say it signed;
//   - kill -9 of a worker holding a payout voucher it has not redeemed: restarted on the same
//     wallet and payout file, it redeems it;
//   - kill -9 of the client gateway right after answers, with the ledger node killed first so
//     the proxy cannot redeem the departed gateway's last voucher: restarted on the same
//     accounting file (and the ledger on its database), the gateway continues from the total it
//     signed, not the ledger's lower `paid`; the proxy refuses no voucher, and the channel ends
//     paid exactly the cost of the answers the client got.
// The seed is printed (VEIL_E2E_SEED replays one). Every wait is bounded; log lines are
// awaited by polling.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VEIL, MODEL, MODEL_NAME, TIME_SCALE, startVeil, stopVeil, client } from './lib.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'veil-pay-'));
const running = [];
after(async () => {
  for (const s of running) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
  if (!process.env.VEIL_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

const SEED = Number(process.env.VEIL_E2E_SEED) || (Date.now() % 1_000_000) + 1;
console.log(`# payments: seed ${SEED} (VEIL_E2E_SEED=${SEED} replays it)`);
// mulberry32: a small seeded generator, enough to pick kill points
let state = SEED >>> 0;
function rand(n) {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (((t ^ (t >>> 14)) >>> 0) % n);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Polls fn() until it returns a truthy value; bounded.
async function until(fn, what, ms = 30000) {
  const deadline = Date.now() + ms * TIME_SCALE;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await sleep(50); // polling interval, not synchronisation
  }
}
const count = (text, re) => (text.match(re) ?? []).length;
const getJson = async (url) => {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return r.json();
};
const sql = (db, q) => execFileSync('sqlite3', ['-readonly', db, q]).toString().trim();
// The worker's payout channel, as the proxy's accounting file names it: [address, total].
const payoutRow = (books) => {
  const rows = sql(books, 'SELECT lower(hex(channel)), total FROM payouts').split('\n').filter(Boolean);
  assert.equal(rows.length, 1, `payout rows: ${rows.join('; ')}`);
  const [hex, total] = rows[0].split('|');
  return [`0:${hex.slice(2)}`, BigInt(total)];
};
const walletOf = (key) => execFileSync(VEIL, ['wallet', 'show', '--key', key]).toString().match(/^raw\s+(\S+)$/m)[1];
const gone = async (pid, who) => {
  process.kill(pid, 'SIGKILL');
  await until(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, `${who} is gone`);
};

async function devnet(name, extra) {
  const dir = path.join(tmp, name);
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  const n = await startVeil(['devnet', '--listen', '127.0.0.1:0', '--model', MODEL, '--dir', path.join(dir, 'state'),
    '--log-dir', logs, ...extra]);
  running.push(n);
  const out = n.stdout();
  const [, workers, clients, state] = out.match(/^devnet: proxy workers (\S+) clients (\S+) dir (\S+)$/m);
  const [, ledger, channel] = out.match(/^devnet: ledger (\S+) channel (\S+)$/m);
  const pid = (who) => Number(out.match(new RegExp(`^devnet: ${who} pid (\\d+)$`, 'm'))[1]);
  const log = (who) => { try { return fs.readFileSync(path.join(logs, `${who}.log`), 'utf8'); } catch { return ''; } };
  return { ...n, dir, workers, clients, state, ledger, channel, pid, log };
}

const attest = (d) => ['--sim-key', path.join(d.state, 'platform.key'),
  '--trust-sim-keys', path.join(d.state, 'trusted-sim-keys.txt'),
  '--allow-measurements', path.join(d.state, 'measurements.txt')];

// A proxy on devnet d's ports, wallet and accounting file (as devnet starts it).
async function restartProxy(d) {
  const p = await startVeil(['proxy', '--workers', d.workers, '--clients', d.clients,
    '--allow-models', path.join(d.state, 'models.txt'), ...attest(d), '--chain', d.ledger,
    '--wallet', path.join(d.state, 'proxy.key'), '--accounts', path.join(d.state, 'proxy-accounts.db')]);
  running.push(p);
  return p;
}

// Paid requests from `loops` concurrent loops until stop() is called; errors (the proxy is
// down, a stream broke) are expected and counted. Each answer's usage.cost is what the
// gateway verified and signed for it.
function load(d, loops) {
  const done = { answers: 0, errors: 0, cost: 0n, fee: 0n };
  let stopped = false;
  const c = client(d);
  const one = async (i) => {
    while (!stopped) {
      try {
        const r = await c.completions.create({ model: MODEL_NAME, prompt: 'Once upon', max_tokens: 2 + ((i + done.answers) % 5) });
        done.answers++;
        done.cost += BigInt(r.usage.cost);
        done.fee += 19n * BigInt(r.usage.prompt_tokens + r.usage.completion_tokens);
      } catch (e) {
        if (!done.errors++) done.first = e.message;
        await sleep(20); // the gateway answers 503 at once while it has no proxy: do not spin
      }
    }
  };
  const all = Promise.all(Array.from({ length: loops }, (_, i) => one(i)));
  return { done, stop: async () => { stopped = true; await all; return done; } };
}

const MARKS = [['request', /proxy: request /g], ['receipt', /proxy: done /g], ['voucher', /charge voucher kept/g]];

// Stops a proxy started apart from the devnet (if any), then the devnet: each must exit 0.
async function stopAll(d, proxy) {
  if (proxy) assert.equal((await stopVeil(proxy)).code, 0, proxy.stderr());
  assert.equal((await stopVeil(d)).code, 0, d.stderr());
}

// The devnet ledger's whole history replays and checks (`veil chain verify`).
function verifyLedger(d) {
  execFileSync(VEIL, ['chain', 'verify', '--db', path.join(d.state, 'ledger.db')]);
}

test('payments: kill -9 of the proxy at random points under load: nothing lost, nothing counted twice', async () => {
  const d = await devnet('proxy-crash', ['--workers', '2']);
  const accounts = path.join(d.state, 'proxy-accounts.db');
  const ROUNDS = 4;
  const kept = [];          // every "charge voucher kept" total any proxy run logged
  let proxyLog = () => d.log('proxy');
  let kill = () => process.kill(d.pid('proxy'), 'SIGKILL');
  let proxy = null;
  const traffic = load(d, 3);
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // kill a random number of events on: a request relayed, a receipt metered (just before
      // its final goes to the client and the worker's payout), a voucher kept; whatever else
      // is in flight then (vouchers, redemptions) is cut where it stands
      const [what, re] = MARKS[rand(MARKS.length)];
      const want = count(proxyLog(), re) + 1 + rand(6);
      await until(() => count(proxyLog(), re) >= want,
        `round ${round}: ${want} × ${what} (${traffic.done.answers} answers, ${traffic.done.errors} errors: ${traffic.done.first})`);
      kill();
      if (proxy) await proxy.exited;
      for (const m of proxyLog().matchAll(/charge voucher kept, total (\d+)/g)) kept.push(BigInt(m[1]));
      proxy = await restartProxy(d);
      proxyLog = () => proxy.stderr();
      kill = () => proxy.proc.kill('SIGKILL');
      console.log(`# round ${round}: killed at ${what} ${want}; ${traffic.done.answers} answers, ${traffic.done.errors} errors so far (${traffic.done.first})`);
    }
    // the last proxy serves on: traffic resumes and is paid through it
    const answered = traffic.done.answers;
    await until(() => traffic.done.answers >= answered + 4 && /charge voucher kept/.test(proxyLog()),
      'answers through the last proxy');
    const done = await traffic.stop();
    // the gateway signs each answer's cost as it gets it: the channel ends paid exactly that
    let ch;
    await until(async () => {
      ch = await getJson(`${d.ledger}/v1/channel/${d.channel}`);
      return BigInt(ch.paid) >= done.cost;
    }, `the client's channel paid ${done.cost}`);
    for (const m of proxyLog().matchAll(/charge voucher kept, total (\d+)/g)) kept.push(BigInt(m[1]));
    assert.equal(BigInt(ch.paid), done.cost, 'paid = what the client got (nothing lost, nothing counted twice)');
    assert.ok(kept.length > 0);
    for (const k of kept) assert.ok(k <= BigInt(ch.paid), `a kept voucher of ${k} is redeemed`);
    // the proxy's own books agree with the ledger
    const chHex = d.channel.split(':')[1];
    await until(() => sql(accounts, `SELECT amount, redeemed FROM vouchers WHERE hex(channel) = '00${chHex.toUpperCase()}'`)
      === `${ch.paid}|${ch.paid}`, 'the accounting file says the channel is redeemed');
    // one payout channel per worker payout key for all the proxy's runs (devnet's workers share
    // one wallet, so one), paid what the proxy signed
    const payouts = sql(accounts, 'SELECT lower(hex(channel)), total FROM payouts').split('\n').filter(Boolean)
      .map((l) => l.split('|'));
    assert.equal(payouts.length, 1, `payout channels: ${payouts.length}`);
    const status = await getJson(`${d.ledger}/v1/status`);
    assert.equal(status.channels, 2, 'the client\'s channel and one payout channel, across all restarts');
    let signed = 0n;
    for (const [hex, total] of payouts) {
      signed += BigInt(total);
      await until(async () => BigInt((await getJson(`${d.ledger}/v1/channel/0:${hex.slice(2)}`)).paid) === BigInt(total),
        `the worker redeemed its payout channel up to ${total}`);
    }
    assert.ok(signed >= done.fee, `the workers were paid ${signed}, at least the fees of the answers (${done.fee})`);
    console.log(`# ${done.answers} answers, ${done.errors} errors, paid ${ch.paid}, payouts ${signed}`);
  } finally {
    await traffic.stop();
    await stopAll(d, proxy);
  }
  verifyLedger(d);
});

test('payments: a worker killed with -9 before redeeming its payout redeems it at restart', async () => {
  const d = await devnet('worker-crash', ['--workers', '1']);
  const books = path.join(d.dir, 'worker-accounts.db');
  // this worker redeems only at exit or start: the kill surely comes before its redemption
  const args = ['worker', '--model', MODEL, '--proxy', d.workers, '--threads', '1', ...attest(d), '--chain', d.ledger,
    '--wallet', path.join(d.state, 'worker.key'), '--accounts', books, '--redeem-every', '3600'];
  let w = await startVeil(args);
  running.push(w);
  try {
    // devnet's own worker leaves (drained), so the request goes to ours
    const gone = d.pid('worker1');
    process.kill(gone, 'SIGTERM');
    await until(() => { try { process.kill(gone, 0); return false; } catch { return true; } }, 'worker1 exits');
    let r = null;
    for (let i = 0; i < 5 && !r; i++) {
      try {
        r = await client(d).completions.create({ model: MODEL_NAME, prompt: 'Once upon', max_tokens: 5 });
      } catch { await sleep(100); } // the gateway may not have heard of worker1's leaving yet
    }
    assert.ok(r, 'an answer');
    const fee = 19n * BigInt(r.usage.prompt_tokens + r.usage.completion_tokens);
    await until(() => w.stderr().includes(`payout voucher kept, total ${fee}`), 'the worker kept its payout');
    const [hex, amount, redeemed] = sql(books, 'SELECT lower(hex(channel)), amount, redeemed FROM vouchers').split('|');
    assert.equal(BigInt(amount), fee);
    assert.equal(BigInt(redeemed), 0n);
    const chUrl = `${d.ledger}/v1/channel/0:${hex.slice(2)}`;
    assert.equal(BigInt((await getJson(chUrl)).paid), 0n, 'not redeemed before the kill');
    w.proc.kill('SIGKILL');
    await w.exited;
    w = await startVeil(args);
    running.push(w);
    // redeemed from its accounting file before it connected (ready comes after)
    const ch = await getJson(chUrl);
    assert.equal(BigInt(ch.paid), fee);
    const wallet = walletOf(path.join(d.state, 'worker.key'));
    assert.equal(ch.payee, wallet, 'the payout channel pays the worker\'s --wallet');
    assert.equal(BigInt((await getJson(`${d.ledger}/v1/account/${wallet}`)).balance), fee);
    assert.equal(sql(books, 'SELECT amount, redeemed FROM vouchers'), `${fee}|${fee}`);
    assert.match(w.stderr(), /worker: settled a voucher of \d+ nano-units from a previous run/);
  } finally {
    assert.equal((await stopVeil(w)).code, 0, w.stderr());
    assert.equal((await stopVeil(d)).code, 0, d.stderr());
  }
  verifyLedger(d);
});

test('payments: a gateway killed with -9 continues from its accounting file; the proxy refuses nothing', async () => {
  const d = await devnet('gateway-crash', ['--workers', '1']);
  const books = path.join(d.state, 'client-accounts.db');
  const proxyBooks = path.join(d.state, 'proxy-accounts.db');
  const chKey = `hex(channel) = '00${d.channel.split(':')[1].toUpperCase()}'`;
  const args = ['client', '--proxy', d.clients, '--listen', '127.0.0.1:0', '--wait-workers', '1', ...attest(d),
    '--chain', d.ledger, '--wallet', path.join(d.state, 'client.key'), '--channel', d.channel, '--accounts', books];
  const ledgerArgs = ['chain', 'serve', '--db', path.join(d.state, 'ledger.db'), '--listen', d.ledger.replace('http://', '')];
  const ROUNDS = 3;
  let gw = d;                // devnet's own gateway and ledger first, then ours
  let ledger = null;
  let killGateway = () => gone(d.pid('client'), 'the gateway');
  let killLedger = () => gone(d.pid('ledger'), 'the ledger');
  const done = { answers: 0, cost: 0n };
  let gaps = 0;
  try {
    for (let round = 1; round <= ROUNDS + 1; round++) {
      const traffic = load(gw, 3);
      const want = 3 + rand(6);
      await until(() => traffic.done.answers >= want, `round ${round}: ${want} answers`);
      const got = await traffic.stop();
      assert.equal(got.errors, 0, `round ${round}: ${got.first}`);
      done.answers += got.answers;
      done.cost += got.cost;
      if (round > ROUNDS) break;
      // The gap a gateway's memory alone cannot close: the proxy holds a voucher it has not
      // redeemed (it redeems every 2 s; the last answer just came) and cannot redeem it when
      // the gateway goes, because the ledger is down then. A gateway that restarted from the
      // ledger's `paid` would sign below that voucher.
      await killLedger();
      const [amount, redeemed] = sql(proxyBooks, `SELECT amount, redeemed FROM vouchers WHERE ${chKey}`).split('|')
        .map(BigInt);
      const failed = count(d.log('proxy'), /cannot redeem a client's voucher/g);
      await killGateway();
      // the proxy tried to redeem the departed client's voucher, and could not
      if (redeemed < amount) {
        gaps++;
        await until(() => count(d.log('proxy'), /cannot redeem a client's voucher/g) > failed, 'the proxy fails to redeem');
      }
      ledger = await startVeil(ledgerArgs);
      running.push(ledger);
      const l = ledger;
      killLedger = async () => { l.proc.kill('SIGKILL'); await l.exited; };
      const paid = BigInt((await getJson(`${d.ledger}/v1/channel/${d.channel}`)).paid);
      // every answer's voucher was in the file before the answer left the gateway
      assert.equal(BigInt(sql(books, `SELECT amount FROM vouchers WHERE ${chKey}`)), done.cost);
      gw = await startVeil(args);
      running.push(gw);
      assert.match(gw.stderr(), new RegExp(`client: continuing from a total of ${done.cost} nano-units signed ` +
        `\\(the ledger has ${paid} paid\\)`));
      const g = gw;
      killGateway = async () => { g.proc.kill('SIGKILL'); await g.exited; };
      console.log(`# round ${round}: killed after ${done.answers} answers costing ${done.cost}; the proxy held ` +
        `${amount}, redeemed ${redeemed}; the ledger had ${paid} paid at the restart`);
    }
    let ch;
    await until(async () => {
      ch = await getJson(`${d.ledger}/v1/channel/${d.channel}`);
      return BigInt(ch.paid) >= done.cost;
    }, `the client's channel paid ${done.cost}`);
    assert.equal(BigInt(ch.paid), done.cost, 'paid = what the client got');
    assert.equal(BigInt(sql(books, `SELECT amount FROM vouchers WHERE ${chKey}`)), done.cost);
    assert.doesNotMatch(d.log('proxy'), /refused a client's voucher/);
    assert.match(d.log('proxy'), /charge voucher kept/);
    console.log(`# ${done.answers} answers, paid ${ch.paid}; ${gaps} of ${ROUNDS} restarts with an unredeemed voucher`);
  } finally {
    if (gw !== d) assert.equal((await stopVeil(gw)).code, 0, gw.stderr());
    assert.equal((await stopVeil(d)).code, 0, d.stderr());
    if (ledger) assert.equal((await stopVeil(ledger)).code, 0, ledger.stderr());
  }
  verifyLedger(d);
});

test('payments: fees earned while the proxy cannot top up a payout channel stay owed, across a restart, and are paid once it can', async () => {
  const d = await devnet('payout-owed', ['--workers', '1']);
  const books = path.join(d.state, 'proxy-accounts.db');
  const key = (who) => path.join(d.state, `${who}.key`);
  const node = ['--node', d.ledger];
  const veil = (...args) => execFileSync(VEIL, args).toString();
  const ask = async () => {
    let r = null;
    for (let i = 0; i < 50 && !r; i++) {
      try {
        r = await client(d).completions.create({ model: MODEL_NAME, prompt: 'Once upon', max_tokens: 4 });
      } catch { await sleep(100); } // the gateway or the worker may not be back on the proxy yet
    }
    assert.ok(r, 'an answer');
    return BigInt(r.usage.prompt_tokens + r.usage.completion_tokens);
  };
  let proxy = null;
  try {
    // one answer at devnet's prices opens the payout channel (2 coins, 1 staked)
    let fees = 19n * await ask();
    await until(() => /payout voucher kept/.test(d.log('worker1')), 'the worker is paid');
    const [channel] = payoutRow(books);
    // a fee of 0.1 coin a token, so the channel's 3 coins run out within a few answers; the
    // proxy reads the prices at start; its wallet keeps half a coin, short of a 2-coin top-up
    await gone(d.pid('proxy'), 'the proxy');
    const FEE = 100000000n;
    veil('chain', 'registry', 'params', '--price', `${FEE}`, '--worker-fee', `${FEE}`, ...node, '--key', key('owner'));
    const wallet = walletOf(key('proxy'));
    const balance = BigInt((await getJson(`${d.ledger}/v1/account/${wallet}`)).balance);
    veil('chain', 'transfer', walletOf(key('owner')), `${balance - 500000000n}`, ...node, '--key', key('proxy'));
    proxy = await restartProxy(d);
    const OWED = /is owed a payout total of \d+/g;
    for (let i = 0; i < 20 && count(proxy.stderr(), OWED) < 2; i++) fees += FEE * await ask();
    assert.ok(count(proxy.stderr(), OWED) >= 2, proxy.stderr());
    // every fee is in the accounting file, paid or not, on the one channel
    assert.deepEqual(payoutRow(books), [channel, fees]);
    // a restart while owed: the file carries it; the worker's registration cannot be paid yet
    proxy.proc.kill('SIGKILL');
    await proxy.exited;
    proxy = await restartProxy(d);
    await until(() => count(proxy.stderr(), OWED) > 0, 'the restarted proxy owes the worker');
    // the wallet refilled: the proxy's timer pays everything owed, without another request
    veil('chain', 'mint', wallet, '20000000000', ...node, '--key', key('owner'));
    const paid = async () => BigInt((await getJson(`${d.ledger}/v1/channel/${channel}`)).paid);
    await until(async () => await paid() >= fees, `the worker redeemed ${fees}`);
    assert.equal(await paid(), fees, 'the payout channel paid exactly the fees of the answers');
    fees += FEE * await ask();
    await until(async () => await paid() >= fees, `the worker redeemed ${fees}`);
    assert.equal(await paid(), fees);
    assert.deepEqual(payoutRow(books), [channel, fees]);
    assert.equal((await getJson(`${d.ledger}/v1/status`)).channels, 2, 'the client\'s channel and one payout channel');
    console.log(`# payouts: ${fees} nano-units paid on one channel after ${count(proxy.stderr(), OWED)} owed payouts`);
  } finally {
    await stopAll(d, proxy);
  }
  verifyLedger(d);
});

test('payments: a worker that closes its payout channel under load is paid on a new one, nothing lost', async () => {
  const d = await devnet('payout-closed', ['--workers', '1']);
  const books = path.join(d.state, 'proxy-accounts.db');
  const worker = path.join(d.state, 'worker.key');
  const traffic = load(d, 2);
  try {
    await until(() => count(d.log('worker1'), /payout voucher kept/g) >= 3, 'the worker is paid');
    const [old] = payoutRow(books);
    const ch = async (a) => getJson(`${d.ledger}/v1/channel/${a}`);
    // closed once the worker redeemed on it, with later vouchers not redeemed yet (most likely)
    await until(async () => BigInt((await ch(old)).paid) > 0n, 'the worker redeems on its payout channel');
    execFileSync(VEIL, ['channel', 'close-request', old, '--node', d.ledger, '--key', worker]);
    const closedAt = traffic.done.answers;
    await until(() => /payout channel is closed/.test(d.log('proxy')) && payoutRow(books)[0] !== old &&
      traffic.done.answers >= closedAt + 4, 'answers paid on a new payout channel');
    const done = await traffic.stop();
    assert.equal(done.errors, 0, done.first);
    const [fresh, total] = payoutRow(books);
    const before = await ch(old);
    assert.equal(before.status, 'withdrawn', 'the proxy took back the closed channel\'s remainder');
    await until(async () => BigInt((await ch(fresh)).paid) >= total, `the worker redeemed ${total} on the new channel`);
    const after = await ch(fresh);
    assert.equal(after.payee, walletOf(worker));
    assert.equal(after.status, 'open');
    assert.equal(BigInt(before.paid) + BigInt(after.paid), done.fee, 'the two channels paid the fees of all answers');
    console.log(`# ${done.answers} answers, fees ${done.fee}: ${before.paid} on the closed channel, ${after.paid} on the new`);
  } finally {
    await traffic.stop();
    assert.equal((await stopVeil(d)).code, 0, d.stderr());
  }
  verifyLedger(d);
});

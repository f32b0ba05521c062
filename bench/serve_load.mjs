// Load generator for `veil serve` (the "Serving" benchmark of bench/README.md). Node 20, no
// dependencies: plain fetch with streaming bodies, and only ever to a loopback address.
//
// For each concurrency level N it runs N clients; each sends streaming requests back to back
// until the level's request count is used up. Per request it records the time to the first
// generated text (TTFT), the mean time per later token (TPOT, from the usage count) and the gaps
// between text chunks; per level it prints one JSON line with aggregate completion tokens/s
// (usage completion tokens of every request / wall time of the level), p50/p99 TTFT, TPOT,
// finish reasons and, with --pid, the server's peak RSS so far. A markdown table goes to stderr.
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 [--concurrency 1,4,16,64]
//        [--requests N] [--max-tokens 64] [--prompt-tokens 32] [--endpoint completions|chat]
//        [--ban ID,...] [--ramp S] [--pid PID] [--shared-prompt] [--no-warmup] [--temperature T]
//
// Prompts: --prompt-tokens N (default 32) sends N token ids to /v1/completions, so every model
// sees the same prompt length whatever its vocabulary (ids 3..258: SentencePiece byte tokens,
// ordinary tokens in any vocabulary of 259 or more); --prompt-tokens 0 or --endpoint chat sends
// a sentence of text instead. Each request's prompt differs from its first token on, so the
// prefix cache cannot reuse another request's KV (--shared-prompt sends one identical prompt).
// Sampling is greedy (temperature 0) unless --temperature T (then the API's other defaults: no
// top-k, top-p 1, each request seeded with its number); --ban gives those token ids a logit bias of -100 so EOS
// does not end streams early. --requests defaults to 2 x concurrency (at least 8).
//
// By default all N clients start at once, so the first N prompts arrive together and the
// clients stay in step (equal lengths finish in the same step). --ramp S starts client i at
// i*S/N seconds instead, which spreads arrivals the way independent users would.
import { readFileSync } from 'node:fs';

const PROMPT = 'The old lighthouse keeper climbed the stairs every evening to light the lamp, ' +
    'and the ships that passed in the night never knew his name.';

function parseArgs(argv) {
    const o = { url: null, concurrency: [1, 4, 16, 64], requests: 0, maxTokens: 64, promptTokens: 32,
                endpoint: 'completions', ban: [], ramp: 0, pid: 0, sharedPrompt: false, warmup: true,
                temperature: 0 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i], v = () => {
            if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
            return argv[++i];
        };
        const int = (s) => {
            if (!/^\d+$/.test(s)) throw new Error(`${a}: '${s}' is not a non-negative integer`);
            return Number(s);
        };
        switch (a) {
        case '--url': o.url = v(); break;
        case '--concurrency': o.concurrency = v().split(',').map(int); break;
        case '--requests': o.requests = int(v()); break;
        case '--max-tokens': o.maxTokens = int(v()); break;
        case '--prompt-tokens': o.promptTokens = int(v()); break;
        case '--ramp':
            o.ramp = Number(v());
            if (!(o.ramp >= 0)) throw new Error('--ramp: expected seconds >= 0');
            break;
        case '--endpoint': o.endpoint = v(); break;
        case '--temperature':
            o.temperature = Number(v());
            if (!(o.temperature >= 0 && o.temperature <= 2)) throw new Error('--temperature: expected 0 to 2');
            break;
        case '--ban': o.ban = v().split(',').filter((s) => s !== '').map(int); break;
        case '--pid': o.pid = int(v()); break;
        case '--shared-prompt': o.sharedPrompt = true; break;
        case '--no-warmup': o.warmup = false; break;
        case '-h': case '--help':
            process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8')
                .split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
            process.exit(0);
        default: throw new Error(`unknown argument '${a}'`);
        }
    }
    if (!o.url) throw new Error('--url is required');
    const host = new URL(o.url).hostname;
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host))
        throw new Error(`--url must be a loopback address, not '${host}'`);
    if (!['completions', 'chat'].includes(o.endpoint)) throw new Error('--endpoint: completions or chat');
    if (o.concurrency.some((c) => c < 1)) throw new Error('--concurrency: levels must be >= 1');
    if (o.maxTokens < 1) throw new Error('--max-tokens must be >= 1');
    return o;
}

// N token ids in 3..258; request n's sequence starts at a different id for each n mod 256.
function promptIds(o, n) {
    const ids = [];
    let x = o.sharedPrompt ? 0 : n;
    for (let i = 0; i < o.promptTokens; i++) {
        ids.push(3 + (x % 256));
        x = (x * 69069 + 12345 + i) % 2147483648;
    }
    return ids;
}

function requestBody(o, n) {
    const text = o.sharedPrompt ? PROMPT : `Story ${n}. ${PROMPT}`;
    const body = { max_tokens: o.maxTokens, temperature: o.temperature, seed: n, stream: true,
                   stream_options: { include_usage: true } };
    if (o.endpoint === 'chat') body.messages = [{ role: 'user', content: text }];
    else body.prompt = o.promptTokens > 0 ? promptIds(o, n) : text;
    if (o.ban.length) body.logit_bias = Object.fromEntries(o.ban.map((id) => [String(id), -100]));
    return JSON.stringify(body);
}

// One streaming request. Resolves to its timings; never rejects (failures are recorded).
async function oneRequest(o, n) {
    const path = o.endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    const t0 = performance.now();
    const r = { ok: false, status: 0, ttft: null, tpot: null, gaps: [], usage: null, finish: null, error: null };
    try {
        const res = await fetch(o.url.replace(/\/$/, '') + path, {
            method: 'POST', headers: { 'Content-Type': 'application/json' }, body: requestBody(o, n) });
        r.status = res.status;
        if (res.status !== 200) {
            r.error = (await res.text()).slice(0, 300);
            return r;
        }
        const dec = new TextDecoder();
        let pending = '', tFirst = null, tLast = null, done = false;
        for await (const bytes of res.body) {
            pending += dec.decode(bytes, { stream: true });
            let cut;
            while ((cut = pending.indexOf('\n\n')) >= 0) {
                const event = pending.slice(0, cut);
                pending = pending.slice(cut + 2);
                for (const line of event.split('\n')) {
                    if (!line.startsWith('data: ')) continue;  // ": ping" heartbeats
                    const data = line.slice(6);
                    if (data === '[DONE]') { done = true; continue; }
                    const j = JSON.parse(data);
                    if (j.error) throw new Error(`stream error: ${j.error.message}`);
                    if (j.usage) r.usage = j.usage;
                    const c = j.choices && j.choices[0];
                    if (!c) continue;
                    const text = o.endpoint === 'chat' ? (c.delta && c.delta.content) : c.text;
                    if (text) {
                        const t = performance.now();
                        if (tFirst === null) tFirst = t;
                        else r.gaps.push(t - tLast);
                        tLast = t;
                    }
                    if (c.finish_reason) r.finish = c.finish_reason;
                }
            }
        }
        if (!done) throw new Error('the stream ended without data: [DONE]');
        if (!r.usage) throw new Error('no usage chunk (stream_options.include_usage)');
        if (tFirst !== null) {
            r.ttft = (tFirst - t0) / 1000;
            if (r.usage.completion_tokens > 1)
                r.tpot = (tLast - tFirst) / 1000 / (r.usage.completion_tokens - 1);
        }
        r.ok = true;
    } catch (e) {
        r.error = String(e && e.message || e);
    }
    return r;
}

// Nearest-rank percentile of a sorted array (p in 0..100).
function pct(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))];
}

function procStatusKiB(pid, key) {
    if (!pid) return null;
    try {
        const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
        return m ? Number(m[1]) : null;
    } catch { return null; }
}

const round = (x, d) => (x === null ? null : Number(x.toFixed(d)));

async function runLevel(o, c, nextId) {
    const total = o.requests || Math.max(2 * c, 8);
    let issued = 0;
    const results = [];
    const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    const t0 = performance.now();
    const client = async (_, i) => {
        if (o.ramp > 0 && i > 0) await new Promise((ok) => setTimeout(ok, o.ramp * 1000 * i / c));
        while (issued < total) {
            issued++;
            results.push(await oneRequest(o, nextId()));
        }
    };
    await Promise.all(Array.from({ length: c }, client));
    const wall = (performance.now() - t0) / 1000;
    const ok = results.filter((r) => r.ok);
    const sum = (f) => ok.reduce((s, r) => s + f(r), 0);
    const ttft = ok.map((r) => r.ttft).filter((x) => x !== null).sort((a, b) => a - b);
    const tpot = ok.map((r) => r.tpot).filter((x) => x !== null).sort((a, b) => a - b);
    const gaps = ok.flatMap((r) => r.gaps).sort((a, b) => a - b);
    const finish = {};
    for (const r of ok) finish[r.finish] = (finish[r.finish] || 0) + 1;
    const errors = results.filter((r) => !r.ok);
    const completion = sum((r) => r.usage.completion_tokens);
    const hwm = procStatusKiB(o.pid, 'VmHWM'), rss = procStatusKiB(o.pid, 'VmRSS');
    return {
        concurrency: c, ramp_s: o.ramp, requests: results.length, ok: ok.length, errors: errors.length,
        first_error: errors.length ? `${errors[0].status} ${errors[0].error}` : undefined,
        prompt_tokens_mean: ok.length ? round(sum((r) => r.usage.prompt_tokens) / ok.length, 1) : null,
        cached_tokens: sum((r) => (r.usage.prompt_tokens_details || {}).cached_tokens || 0),
        completion_tokens: completion, wall_s: round(wall, 3),
        agg_tok_s: round(completion / wall, 2),
        ttft_p50_s: round(pct(ttft, 50), 4), ttft_p99_s: round(pct(ttft, 99), 4),
        ttft_max_s: round(pct(ttft, 100), 3),
        tpot_p50_ms: round(pct(tpot, 50) === null ? null : pct(tpot, 50) * 1000, 1),
        tpot_p99_ms: round(pct(tpot, 99) === null ? null : pct(tpot, 99) * 1000, 1),
        itl_p99_ms: round(pct(gaps, 99), 1),
        finish, loadavg_1m: load1,
        rss_peak_mib: hwm === null ? null : round(hwm / 1024, 1),
        rss_now_mib: rss === null ? null : round(rss / 1024, 1),
    };
}

function table(rows) {
    const base = rows.find((r) => r.concurrency === 1);
    const f = (x, d) => (x === null || x === undefined ? '-' : x.toFixed(d));
    const out = ['| concurrency | requests | aggregate tok/s | speed-up vs 1 | TTFT p50 (s) | TTFT p99 (s) | TPOT p50 (ms) | peak RSS (MiB) |',
                 '|---:|---:|---:|---:|---:|---:|---:|---:|'];
    for (const r of rows)
        out.push(`| ${r.concurrency} | ${r.ok}/${r.requests} | ${f(r.agg_tok_s, 1)} | ` +
                 `${base ? f(r.agg_tok_s / base.agg_tok_s, 2) + '×' : '-'} | ${f(r.ttft_p50_s, 2)} | ` +
                 `${f(r.ttft_p99_s, 2)} | ${f(r.tpot_p50_ms, 0)} | ${f(r.rss_peak_mib, 0)} |`);
    return out.join('\n');
}

async function main() {
    let o;
    try {
        o = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`serve_load: ${e.message}\n`);
        process.exit(2);
    }
    let id = 0;
    const nextId = () => ++id;
    if (o.warmup) {  // pages the weights in and fills the allocator before anything is timed
        const w = await oneRequest({ ...o, maxTokens: Math.min(o.maxTokens, 8) }, nextId());
        if (!w.ok) {
            process.stderr.write(`serve_load: warm-up request failed: ${w.status} ${w.error}\n`);
            process.exit(1);
        }
    }
    const rows = [];
    let failed = false;
    for (const c of o.concurrency) {
        const row = await runLevel(o, c, nextId);
        rows.push(row);
        process.stdout.write(JSON.stringify(row) + '\n');
        if (row.errors) failed = true;
    }
    process.stderr.write(table(rows) + '\n');
    process.exit(failed ? 1 : 0);
}

main();

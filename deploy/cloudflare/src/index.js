// The broker's Worker entry: it runs the Go module (deploy/cloudflare/worker, built by
// deploy/cloudflare/build), hands it each request and the cron trigger, and holds the replay
// store, a Durable Object with SQLite storage. Every decision is the Go broker's; this file only
// carries requests, bindings and claims across.
import "./wasm_exec.js"; // Go's glue, copied from $(go env GOROOT)/lib/wasm by the build
import wasm from "./cfmint.wasm";
import policy from "./policy.yaml"; // the bundled policy, checked by `cfmint policy check` at build
import { DurableObject } from "cloudflare:workers";

let started = null; // the Promise of the running Go program's API, one per isolate

function start(env) {
  if (!started) {
    started = boot(env).catch((err) => {
      started = null; // the next request tries again
      throw err;
    });
  }
  return started;
}

async function boot(env) {
  const go = new Go();
  const instance = await WebAssembly.instantiate(wasm, go.importObject);
  // run() runs main until it waits for calls; its promise settles only if the program ends (a
  // panic), and the next request then starts a fresh one.
  go.run(instance).finally(() => {
    console.error(JSON.stringify({ level: "ERROR", msg: "the Go program ended; the next request starts it again", event: "start" }));
    started = null;
  });
  const api = globalThis.cfmint;
  api.start({
    token: await bootstrapToken(env.CLOUDFLARE_BOOTSTRAP_TOKEN),
    apiBase: env.CLOUDFLARE_API_BASE_URL,
    policy,
    policyName: env.POLICY_NAME || "policy.yaml",
    logLevel: env.LOG_LEVEL,
    rateLimit: env.RATE_LIMIT,
    rateReserve: env.RATE_RESERVE,
    store: (method, args) =>
      replayStore(env)
        .store(method, args)
        .catch((err) => {
          // The broker answers 503 and never skips the check; the cause is the operator's to see.
          console.error(JSON.stringify({ level: "ERROR", msg: "the replay store did not answer", event: "replay", method, error: String(err) }));
          throw err;
        }),
  });
  return api;
}

// bootstrapToken reads a Secrets Store binding (an object with get()) or a Worker secret (a
// string); anything else is "", which the broker refuses with a clear error.
async function bootstrapToken(binding) {
  if (typeof binding === "string") return binding;
  if (binding && typeof binding.get === "function") return await binding.get();
  return "";
}

// replayStore is the one Durable Object every isolate keeps the broker's store in.
function replayStore(env) {
  if (!env.REPLAY) throw new Error("the Durable Object binding REPLAY is missing (see wrangler.jsonc)");
  return env.REPLAY.get(env.REPLAY.idFromName("replay"));
}

function unavailable(err) {
  console.error(JSON.stringify({ level: "ERROR", msg: "the Worker could not start the broker", event: "start", error: String(err) }));
  return Response.json({ error: "the broker could not start; its operator finds why in the Worker's logs (event start)" }, { status: 503, headers: { "Retry-After": "60" } });
}

export default {
  async fetch(request, env) {
    let api;
    try {
      api = await start(env);
    } catch (err) {
      return unavailable(err);
    }
    const body = request.method === "GET" || request.method === "HEAD" ? null : new Uint8Array(await request.arrayBuffer());
    let out;
    try {
      out = await api.handle(request.method, request.url, [...request.headers], body);
    } catch (err) {
      console.error(JSON.stringify({ level: "ERROR", msg: "the broker failed the request", event: "request", error: String(err) }));
      return Response.json({ error: "the broker failed; its operator finds why in the Worker's logs (event request)" }, { status: 500 });
    }
    return new Response(out.body.length > 0 ? out.body : null, { status: out.status, headers: out.headers });
  },

  // The cron trigger: delete the broker's expired tokens, which count against the quota.
  async scheduled(controller, env) {
    const api = await start(env);
    await api.sweep();
  },
};

// ReplayStore is the broker's store (internal/worker/store.go): each ID token's single use until
// it expires, each repository's fair shares under each rule (mints in a sliding window, live
// tokens), its revokes of tokens not its own, the sweep lock, and which tokens each step's nonce
// minted. A Durable Object runs one call
// at a time and each call here is one SQLite transaction, so two requests can never both claim
// one ID token or one last slot, whichever isolates they reach. Times are Unix milliseconds, as
// the broker gives them; every row carries when it may go, and each call drops what has gone.
export class ReplayStore extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.storage = ctx.storage;
    this.sql = ctx.storage.sql;
    for (const stmt of [
      "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, until INTEGER NOT NULL)",
      "CREATE INDEX IF NOT EXISTS claims_until ON claims (until)",
      "CREATE TABLE IF NOT EXISTS mints (key TEXT NOT NULL, member TEXT NOT NULL, at INTEGER NOT NULL, drop_at INTEGER NOT NULL, PRIMARY KEY (key, member))",
      "CREATE INDEX IF NOT EXISTS mints_drop ON mints (drop_at)",
      "CREATE TABLE IF NOT EXISTS active (key TEXT NOT NULL, member TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (key, member))",
      "CREATE INDEX IF NOT EXISTS active_until ON active (until)",
      "CREATE TABLE IF NOT EXISTS strangers (key TEXT PRIMARY KEY, n INTEGER NOT NULL, end_at INTEGER NOT NULL)",
      "CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL)",
      "CREATE TABLE IF NOT EXISTS nonces (key TEXT NOT NULL, ref TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (key, ref))",
      "CREATE INDEX IF NOT EXISTS nonces_until ON nonces (until)",
    ]) {
      this.sql.exec(stmt);
    }
  }

  // store runs one of the broker's store methods with its arguments (JSON) and answers JSON.
  store(method, args) {
    const f = storeMethods[method];
    if (!f) throw new Error(`the store has no method ${JSON.stringify(method)}`);
    const a = JSON.parse(args);
    return JSON.stringify(this.storage.transactionSync(() => f(this.sql, a)));
  }
}

// one is the first row of a query, or {}.
function one(cursor) {
  return cursor.toArray()[0] || {};
}

const storeMethods = {
  // claim reports whether key is new: true once, until the instant until.
  claim(sql, { key, until, now }) {
    sql.exec("DELETE FROM claims WHERE until <= ?", now);
    // RETURNING answers the row only when it was inserted (rowsWritten counts index writes too).
    return sql.exec("INSERT INTO claims (key, until) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key", key, until).toArray().length === 1;
  },

  // reserve counts a mint if the key's limits allow it (broker.ShareStore.Reserve): its mints in
  // (now-window, now] stay below mints, its live tokens (reservations included) below active.
  reserve(sql, { key, member, mints, window, active, now, pending }) {
    sql.exec("DELETE FROM mints WHERE drop_at <= ?", now);
    sql.exec("DELETE FROM active WHERE until <= ?", now);
    const m = one(sql.exec("SELECT COUNT(*) AS n, MIN(at) AS first FROM mints WHERE key = ? AND at > ?", key, now - window));
    if (mints > 0 && m.n >= mints) return { over: "max_mints", count: m.n, wait: m.first + window - now };
    const a = one(sql.exec("SELECT COUNT(*) AS n, MIN(until) AS first FROM active WHERE key = ?", key));
    if (active > 0 && a.n >= active) return { over: "max_active", count: a.n, wait: a.first - now };
    sql.exec("INSERT OR REPLACE INTO mints (key, member, at, drop_at) VALUES (?, ?, ?, ?)", key, member, now, now + window);
    sql.exec("INSERT OR REPLACE INTO active (key, member, until) VALUES (?, ?, ?)", key, member, pending);
    return { over: "", count: m.n + 1, wait: 0 };
  },

  // confirm turns a reservation into the token minted: a live slot until it expires.
  confirm(sql, { key, member, token, expires }) {
    sql.exec("DELETE FROM active WHERE key = ? AND member = ?", key, member);
    sql.exec("INSERT OR REPLACE INTO active (key, member, until) VALUES (?, ?, ?)", key, token, expires);
    return true;
  },

  // cancel forgets a reservation whose mint failed.
  cancel(sql, { key, member }) {
    sql.exec("DELETE FROM mints WHERE key = ? AND member = ?", key, member);
    sql.exec("DELETE FROM active WHERE key = ? AND member = ?", key, member);
    return true;
  },

  // release frees a token's live slot: it was revoked or swept.
  release(sql, { key, token }) {
    sql.exec("DELETE FROM active WHERE key = ? AND member = ?", key, token);
    return true;
  },

  // strangers adds add to the key's count in a fixed window and answers it with the time left.
  strangers(sql, { key, add, window, now }) {
    sql.exec("DELETE FROM strangers WHERE end_at <= ?", now);
    const w = one(sql.exec("SELECT n, end_at FROM strangers WHERE key = ?", key));
    const end = w.end_at ?? now + window;
    const n = (w.n ?? 0) + add;
    if (n > 0) sql.exec("INSERT OR REPLACE INTO strangers (key, n, end_at) VALUES (?, ?, ?)", key, n, end);
    return { count: n, left: end - now };
  },

  // rememberNonce adds ref to the nonce key's set, which lives until the latest until given.
  rememberNonce(sql, { key, ref, until, now }) {
    sql.exec("DELETE FROM nonces WHERE until <= ?", now);
    const last = Math.max(until, one(sql.exec("SELECT MAX(until) AS until FROM nonces WHERE key = ?", key)).until ?? 0);
    sql.exec("INSERT OR REPLACE INTO nonces (key, ref, until) VALUES (?, ?, ?)", key, ref, last);
    sql.exec("UPDATE nonces SET until = ? WHERE key = ?", last, key);
    return true;
  },

  // nonceRefs is the nonce key's set, empty once it has lapsed.
  nonceRefs(sql, { key, now }) {
    return sql.exec("SELECT ref FROM nonces WHERE key = ? AND until > ? ORDER BY ref", key, now).toArray().map((r) => r.ref);
  },

  // tryLock takes the lock name for holder until now+ttl, unless anyone holds it.
  tryLock(sql, { name, holder, ttl, now }) {
    sql.exec("DELETE FROM locks WHERE until <= ?", now);
    if (one(sql.exec("SELECT holder FROM locks WHERE name = ?", name)).holder !== undefined) return false;
    sql.exec("INSERT INTO locks (name, holder, until) VALUES (?, ?, ?)", name, holder, now + ttl);
    return true;
  },
};

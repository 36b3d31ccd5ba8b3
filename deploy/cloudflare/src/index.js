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
    claim: (key, until) =>
      replayStore(env)
        .claim(key, until)
        .catch((err) => {
          // The broker answers 503 and never skips the check; the cause is the operator's to see.
          console.error(JSON.stringify({ level: "ERROR", msg: "the replay store did not answer", event: "replay", error: String(err) }));
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

// replayStore is the one Durable Object every isolate claims ID tokens in.
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

// ReplayStore records each ID token's single use until it expires. A Durable Object runs one
// call at a time and its SQLite storage is strongly consistent, so two requests can never both
// claim one token, whichever isolates they reach.
export class ReplayStore extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, until INTEGER NOT NULL)");
    this.sql.exec("CREATE INDEX IF NOT EXISTS claims_until ON claims (until)");
  }

  // claim reports whether key is new: true once, until the instant until (Unix milliseconds).
  claim(key, until) {
    this.sql.exec("DELETE FROM claims WHERE until <= ?", Date.now());
    // RETURNING answers the row only when it was inserted (rowsWritten counts index writes too).
    const rows = this.sql.exec("INSERT INTO claims (key, until) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key", key, until).toArray();
    return rows.length === 1;
  }
}

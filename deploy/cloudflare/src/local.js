// run-local's control port, on loopback only and never deployed:
//   GET  /__scheduled[?cron=...]  runs the broker's scheduled handler once, as Cloudflare's cron
//                                 does, and answers its outcome;
//   POST /__store?method=M        runs the Durable Object store's method M with the JSON body as
//                                 its arguments (internal/worker/store.go), so that tests check
//                                 the store the broker uses on Workers against the broker's
//                                 store conformance test.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__scheduled") {
      const result = await env.BROKER.scheduled({ cron: url.searchParams.get("cron") || "17 * * * *", scheduledTime: Date.now() });
      return Response.json(result, { status: result.outcome === "ok" ? 200 : 500 });
    }
    if (url.pathname === "/__store" && request.method === "POST") {
      const store = env.REPLAY.get(env.REPLAY.idFromName("replay"));
      try {
        return new Response(await store.store(url.searchParams.get("method"), await request.text()), { headers: { "Content-Type": "application/json" } });
      } catch (err) {
        return new Response(String(err), { status: 500 });
      }
    }
    return new Response("not found: ask GET /__scheduled or POST /__store?method=M\n", { status: 404 });
  },
};

// run-local's cron trigger: a request to /__scheduled on its own loopback port runs the broker's
// scheduled handler once, as Cloudflare's cron does, and answers its outcome.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/__scheduled") return new Response("not found: ask /__scheduled\n", { status: 404 });
    const result = await env.BROKER.scheduled({ cron: url.searchParams.get("cron") || "17 * * * *", scheduledTime: Date.now() });
    return Response.json(result, { status: result.outcome === "ok" ? 200 : 500 });
  },
};

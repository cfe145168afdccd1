// A loopback provider that streams as its script says, for the end-to-end stream tests and the
// streaming example: each provider lives under /<name>/v1 and answers its next script entry
// (the last one repeats). An entry: `{status = 200, headers, headDelayMs, events: [{data, event,
// raw, delayMs, after}], then: 'end' | 'cut' | 'stall'}` (`after`: a promise the event waits for), `{silent: true}` (never answers), or
// `{body}` for a whole JSON answer. `data` objects are written as JSON. Every request is
// recorded with its parsed body and whether its connection was closed before its end.
import { createServer } from 'node:http';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** An OpenAI chat-completions chunk carrying `content` (and `finish`, when given). */
export function chunk(content, finish = null) {
  return { id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] };
}

/** An OpenAI chat stream of `words`, each `delayMs` after the last, finished and `[DONE]`. */
export function openaiStream(words, delayMs = 0) {
  return {
    events: [
      ...words.map((w, i) => ({ data: chunk(w, i === words.length - 1 ? 'stop' : null), delayMs })),
      { raw: 'data: [DONE]\n\n' },
    ],
  };
}

export async function startStreamMock(scripts) {
  const requests = [];
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const provider = req.url.split('/')[1];
    const record = { provider, body: JSON.parse(Buffer.concat(chunks).toString() || 'null'), closedEarly: false };
    requests.push(record);
    res.on('close', () => { record.closedEarly = !res.writableFinished; });
    const list = scripts[provider] ?? [];
    const entry = list.length > 1 ? list.shift() : list[0] ?? openaiStream(['ok']);
    if (entry.silent) return;
    if (entry.headDelayMs) await sleep(entry.headDelayMs);
    if (entry.body !== undefined) {
      res.writeHead(entry.status ?? 200, { 'content-type': 'application/json', ...entry.headers });
      res.end(typeof entry.body === 'string' ? entry.body : JSON.stringify(entry.body));
      return;
    }
    res.writeHead(entry.status ?? 200, { 'content-type': 'text/event-stream', ...entry.headers });
    res.flushHeaders();
    for (const e of entry.events ?? []) {
      if (e.delayMs) await sleep(e.delayMs);
      if (e.after) await e.after;
      if (res.destroyed) return;
      const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
      // Handed to the socket before the next event (and before a cut).
      await new Promise((resolve) => res.write(e.raw ?? `${e.event ? `event: ${e.event}\n` : ''}data: ${data}\n\n`, resolve));
    }
    if (entry.then === 'cut') setTimeout(() => res.socket?.destroy(), 20);
    else if (entry.then !== 'stall') res.end();
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    requests,
    baseUrl: (provider) => `${base}/${provider}/v1`,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(resolve); }),
  };
}

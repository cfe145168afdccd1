// A loopback OpenAI-compatible provider for tests and examples: each provider lives under
// /<name>/v1 and answers by its handler; every request is recorded, with the client port of its
// connection.
import { createServer } from 'node:http';

export const QUOTA_429 = {
  status: 429,
  body: { error: { message: 'usage allocated quota exceeded.', type: 'insufficient_quota', code: 'quota_exceeded' } },
};
export const DEEPSEEK_401 = {
  status: 401,
  body: { error: { message: 'Authentication Fails, Your api key: ****abcd is invalid', type: 'authentication_error', code: 'invalid_request_error' } },
};

export function completion(model, content = 'ok') {
  return {
    status: 200,
    body: {
      id: 'chatcmpl-mock', object: 'chat.completion', created: 0, model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    },
  };
}

/** `handlers`: {providerName: (request) => {status, headers, body}}; default answers 200. */
export async function startMockProvider(handlers = {}) {
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const [, provider, ...rest] = req.url.split('/');
      let json;
      try {
        json = JSON.parse(Buffer.concat(chunks).toString() || 'null');
      } catch {
        json = null;
      }
      const record = { provider, path: `/${rest.join('/')}`, authorization: req.headers.authorization, model: json?.model, port: req.socket.remotePort, worker: req.headers['x-worker'] };
      requests.push(record);
      const answer = handlers[provider]?.(record) ?? completion(json?.model);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    requests,
    baseUrl: (provider) => `${base}/${provider}/v1`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

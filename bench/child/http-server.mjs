// The HTTP benchmark's server: node:http on 127.0.0.1, an ephemeral port, the app in
// http-app.mjs. Prints `READY {"port"}`; `GET /__cpu` answers its CPU time so far (the load
// generator reads it around each batch); stdin `end` (or stdin closing) prints the result and
// stops. LIVEPATCH_INCLUDE selects this file and http-app.mjs in the instrumented run.
import http from 'node:http';
import { handle } from './http-app.mjs';
import { cpuMs, emit, instrumentation } from './common.mjs';

const server = http.createServer((req, res) => {
  if (req.url === '/__cpu') {
    res.end(String(cpuMs()));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const [status, text] = handle(
      req.method,
      req.url,
      chunks.length === 0 ? '' : Buffer.concat(chunks).toString('utf8'),
    );
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${JSON.stringify({ port: server.address().port })}\n`);
});

let ended = false;
async function end() {
  if (ended) return;
  ended = true;
  emit({ instrumentation: await instrumentation('/bench/child/http-') });
  server.closeAllConnections();
  server.close();
  process.stdin.destroy();
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  if (d.includes('end')) void end();
});
process.stdin.on('end', () => void end());

// A second WebSocket client: Node's `ws` (Debian's node-ws; NODE_PATH=/usr/share/nodejs).
// Usage: node ws-client.js PORT TOKEN IMAGE. One streaming sandbox.run with stdin; prints
// PASS/FAIL lines (tests/e2e/serve-run.sh).
const WebSocket = require('ws');
const [port, token, image] = process.argv.slice(2);
const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/ws`, { headers: { Authorization: `Bearer ${token}` } });
let out = '', failures = 0;
const check = (name, ok, why) => { if (ok) console.log(`PASS: ${name}`); else { failures++; console.log(`FAIL: ${name}: ${JSON.stringify(why)}`); } };
const timer = setTimeout(() => { check('node-ws-timeout', false, 'no answer in 240 s'); process.exit(1); }, 240000);
ws.on('open', () => {
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'n1', method: 'sandbox.run',
    params: { image, memory_mib: 128, stream: true, command: ['sh', '-c', 'tr a-z A-Z'] } }));
  ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'stdin', params: { call: 'n1', data: 'node ws\n', eof: true } }));
});
ws.on('pong', (d) => { check('node-ws-pong', d.toString() === 'p1', d.toString()); ws.close(1000); });
ws.on('message', (data) => {
  const m = JSON.parse(data.toString());
  if (m.method === 'output') { out += m.params.data; return; }
  if (m.id === 'n1') {
    check('node-ws-output', out === 'NODE WS\n', out);
    check('node-ws-result', m.result && m.result.exit_code === 0 && m.result.stdout === 'NODE WS\n', m);
    ws.ping('p1');
  }
});
ws.on('close', (code) => { clearTimeout(timer); check('node-ws-close', code === 1000, code); process.exit(failures ? 1 : 0); });
ws.on('error', (e) => { check('node-ws-error', false, String(e)); process.exit(1); });

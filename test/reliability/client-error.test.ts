import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, spawnServer, type RunningServer } from '../process';

/**
 * Requests refused by Node's HTTP parser, before Express: the real server (child process) still
 * answers them with an OperationOutcome, and goes on serving.
 */
let dataDir: string;
let server: RunningServer;
beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-client-error-'));
  server = await spawnServer({ DATA_DIR: dataDir });
}, 60_000);
afterAll(async () => {
  server.child.kill('SIGTERM');
  await server.exited;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Sends raw bytes and reads until the server closes the connection. */
function raw(data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1', () => socket.end(data));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString()));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

test('a 100,000-character query string is 431 with an OperationOutcome', async () => {
  const r = await httpRequest('GET', `${server.baseUrl}/Patient?family=${'a'.repeat(100_000)}`);
  expect(r.status).toBe(431);
  expect((JSON.parse(r.body) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  expect((await httpRequest('GET', `${server.baseUrl}/metadata`)).status).toBe(200);
});

test('a malformed request line is 400 with an OperationOutcome', async () => {
  const answer = await raw('GET /fhir/metadata HTTP/9.9 garbage\r\n\r\n');
  expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  expect(answer).toContain('"resourceType":"OperationOutcome"');
});

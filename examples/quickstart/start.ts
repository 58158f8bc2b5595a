// `npm start`: the two example backends plus `portico serve` on examples/quickstart/manifests.
//   curl -H 'Host: demo.local' http://127.0.0.1:8080/
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEchoBackend } from './echo-backend.ts';

const hello = await startEchoBackend('hello', '127.0.0.1', 9001);
const world = await startEchoBackend('world', '127.0.0.1', 9002);
process.stdout.write('example backends: hello on 127.0.0.1:9001, world on 127.0.0.1:9002\n');

const bin = fileURLToPath(new URL('../../bin/portico.js', import.meta.url));
const manifests = fileURLToPath(new URL('./manifests', import.meta.url));
const args = ['serve', '--manifests', manifests, '--http-port', '8080', '--https-port', '8443', '--admin-port', '10254', ...process.argv.slice(2)];
const portico = spawn(process.execPath, [bin, ...args], { stdio: 'inherit' });
process.stdout.write(`portico ${args.join(' ')}\ntry: curl -H 'Host: demo.local' http://127.0.0.1:8080/\n`);

const stop = (): void => {
  portico.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
portico.on('exit', async (code) => {
  await Promise.all([hello.close(), world.close()]);
  process.exit(code ?? 0);
});

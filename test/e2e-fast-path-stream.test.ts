// The fast path's end-to-end tests again, with its socket I/O through Node's streams: the
// fallback where the handle-level binding is not as expected (src/http1/socket-io.ts).
process.env.PORTICO_SOCKET_IO = 'stream';
await import('./e2e-fast-path.test.ts');

// Entry point of a worker process (node:cluster runs this file).
import { setFlagsFromString } from 'node:v8';
import './worker.ts';

// Route authors' regular expressions run on V8's linear-time engine (router/regex.ts). Set before
// the first routing table arrives over IPC, which is when patterns are compiled.
setFlagsFromString('--enable-experimental-regexp-engine');

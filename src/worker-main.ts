// Entry point of a worker process (node:cluster runs this file).
import './worker.ts';

#!/usr/bin/env node
// Runs the TypeScript sources directly on Node 24 (type stripping); no build step.
import { main } from '../src/cli.ts';

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);

// `portico`: the command line. `portico serve` runs the primary, which forks the workers.
import cluster from 'node:cluster';
import { runPrimary } from './primary.ts';
import { UsageError, applyConfigFile, parseServeOptions, serveUsage } from './options.ts';

const USAGE = `Usage: portico <command> [flags]

Commands:
  serve    serve Ingress traffic from a directory of Kubernetes manifests or the Kubernetes API

Run 'portico serve --help' for the flags.
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'serve') {
    process.stderr.write(`portico: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(serveUsage());
    return 0;
  }
  try {
    const { options, warnings } = await applyConfigFile(parseServeOptions(rest));
    await runPrimary(options, warnings);
    return -1; // keeps running
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`portico serve: ${err.message}\n\n${serveUsage()}`);
      return 2;
    }
    process.stderr.write(`portico serve: ${(err as Error).message}\n`);
    return 1;
  }
}

if (cluster.isPrimary && import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => {
    if (code >= 0) process.exit(code);
  });
}

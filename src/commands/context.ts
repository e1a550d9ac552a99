// What every sub-command receives, and the error a sub-command throws for a wrong invocation (printed as one line,
// exit code 2). Kept apart from cli.ts so command modules never import the entry point.
import type { Config } from '../config.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CommandContext {
  config: Config;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

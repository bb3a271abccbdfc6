import { CahError } from '../errors.js';

/**
 * What a command's failure was, for the exit code `cli/main.ts` picks: USAGE a user mistake (flags,
 * files the user named), PARTIAL the work failed or partly failed, REMOTE a remote (the network,
 * the hub, Common Crawl) could not be reached or answered an error.
 */
export type CliErrorCode = 'CAH_USAGE' | 'CAH_PARTIAL' | 'CAH_REMOTE';

/** A user mistake or an expected failure: printed as one line (`cah: message`) without a stack trace. */
export class CliError extends CahError {
  constructor(message: string, code: CliErrorCode = 'CAH_USAGE') {
    super(code, message);
  }
}

/**
 * How a command that ran to its end came out, when not plainly well: `partial` (some of the work
 * failed, and the command has said so). `cli/main.ts` turns it into the exit code after the
 * command returns, so that the process still ends on its own (logs flushed, handles closed).
 */
export type Outcome = 'ok' | 'partial';

let outcome: Outcome = 'ok';

export function reportOutcome(value: Outcome): void {
  outcome = value;
}

export function commandOutcome(): Outcome {
  return outcome;
}

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
 * failed, or a remote it needed went away, and the command has said so), `refused` (a worker whose
 * token the coordinator refused). `cli/main.ts` turns it into the exit code after the command
 * returns, so that the process still ends on its own (logs flushed, handles closed), unless the
 * command asked to `exit` at once (a worker whose pooled sockets would keep it alive).
 */
export type Outcome = 'ok' | 'partial' | 'refused';

let reported: { outcome: Outcome; exit: boolean } = { outcome: 'ok', exit: false };

export function reportOutcome(outcome: Outcome, opts: { exit?: boolean } = {}): void {
  reported = { outcome, exit: opts.exit ?? false };
}

export function commandOutcome(): { outcome: Outcome; exit: boolean } {
  return reported;
}

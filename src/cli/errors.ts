/**
 * A user mistake or an expected failure: printed as one line (`cah: message`) without a stack
 * trace, and the process exits with `exitCode`.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Exit codes: 0 success, 1 the work ran but something failed (partial), 2 usage/config error. */
export const EXIT_PARTIAL = 1;
export const EXIT_USAGE = 2;

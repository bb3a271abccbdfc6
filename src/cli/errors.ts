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

/**
 * Exit codes, one per class of failure: 0 success; 1 the work failed or partly failed (failed shards,
 * servers not created, a remote such as the network, the hub or Common Crawl unreachable); 2 usage
 * or configuration error (flags, files the user named); 3 worker refused by the coordinator.
 */
export const EXIT_PARTIAL = 1;
/** A remote could not be reached or answered an error: the same class as a partial failure. */
export const EXIT_REMOTE = 1;
export const EXIT_USAGE = 2;

/**
 * The one base class of cah's own errors, as undici's: a stable string `code` callers branch on
 * instead of parsing messages. Every layer may import this module; only `cli/main.ts` turns codes
 * into exit codes.
 */
export class CahError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Structured progress logging, pino-compatible: `log({ server: 'cah-x-1' }, 'created')`. */
export type SwarmLog = (obj: object, msg: string) => void;

import { CahError } from '../errors.js';

/** A swarm request that cannot work as given (unknown location, no token, …): exit code 2, nothing was changed. */
export class SwarmConfigError extends CahError {
  constructor(message: string) {
    super('CAH_SWARM_CONFIG', message);
  }
}

/** A swarm request that cannot work as given (unknown location, no token, …): exit code 2, nothing was changed. */
export class SwarmConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwarmConfigError';
  }
}

import { SwarmConfigError } from './errors.js';
import type { ServerType } from './hetzner/types.js';

/** The gross hourly price of a type in a location (null where the API gives none). */
export function hourlyPrice(type: ServerType, location: string): number | null {
  const price = type.prices.find((p) => p.location === location);
  const gross = price ? Number(price.price_hourly.gross) : NaN;
  return Number.isFinite(gross) ? gross : null;
}

/** Orderable in `location` now: not deprecated (the cx22/cpx11 generation is) and available there. */
export function isOrderable(type: ServerType, location: string): boolean {
  if (type.deprecated || type.deprecation) return false;
  return type.locations.some((l) => l.name === location && l.available && !l.deprecation);
}

/** The API's architecture name for this machine's (bundled node_modules only run on the same one). */
export function localArchitecture(): 'x86' | 'arm' {
  return process.arch === 'arm64' ? 'arm' : 'x86';
}

/**
 * The server types to try, best first. `auto`: every orderable type, this machine's architecture
 * first, cheapest first, so that when one is out of capacity the next is tried. A named type must
 * exist and be orderable in the location.
 */
export function candidateTypes(types: ServerType[], location: string, requested: string, arch: 'x86' | 'arm' = localArchitecture()): ServerType[] {
  const orderable = types.filter((t) => isOrderable(t, location));
  if (requested !== 'auto') {
    const type = types.find((t) => t.name === requested);
    if (!type) throw new SwarmConfigError(`unknown server type "${requested}"; orderable in ${location}: ${names(orderable)}`);
    if (!isOrderable(type, location)) {
      const why = type.deprecated || type.deprecation ? 'is deprecated' : `is not available in ${location}`;
      throw new SwarmConfigError(`server type ${requested} ${why}; orderable there: ${names(orderable)} (or --type auto)`);
    }
    return [type];
  }
  if (orderable.length === 0) throw new SwarmConfigError(`no server type can be ordered in ${location} now`);
  const price = (t: ServerType): number => hourlyPrice(t, location) ?? Number.POSITIVE_INFINITY;
  return [...orderable].sort(
    (a, b) => Number(b.architecture === arch) - Number(a.architecture === arch) || price(a) - price(b) || a.name.localeCompare(b.name),
  );
}

function names(types: ServerType[]): string {
  return types.length ? types.map((t) => t.name).join(', ') : 'none';
}

import { SwarmConfigError } from './errors.js';
import type { ServerType } from './hetzner/types.js';

export type Architecture = 'x86' | 'arm';

/** `--type auto` takes types up to this many times the cheapest orderable one's price. */
export const AUTO_PRICE_FACTOR = 1.5;

/** The gross hourly price of a type in a location (null where the API gives none). */
export function hourlyPrice(type: ServerType, location: string): number | null {
  const price = type.prices.find((p) => p.location === location);
  const gross = price ? Number(price.price_hourly.gross) : NaN;
  return Number.isFinite(gross) ? gross : null;
}

/** Orderable in `location` now: not deprecated (the cx22/cpx11 generation is) and sold there. */
export function isOrderable(type: ServerType, location: string): boolean {
  if (type.deprecated || type.deprecation) return false;
  return type.locations.some((l) => l.name === location && l.available && !l.deprecation);
}

/** `--arch`: the API's name for it (`arm64` is what operators type). */
export function parseArchitecture(flag: string): Architecture {
  if (flag === 'x86' || flag === 'x86_64' || flag === 'amd64') return 'x86';
  if (flag === 'arm' || flag === 'arm64' || flag === 'aarch64') return 'arm';
  throw new SwarmConfigError(`--arch must be x86 or arm64, got "${flag}"`);
}

export interface TypeChoice {
  /** `auto` or a type name. */
  requested: string;
  arch: Architecture;
  /** `--max-price`: gross € per hour a type may cost (default: 1.5× the cheapest orderable). */
  maxPrice?: number;
}

/** The `auto` candidates in a location: orderable, of the architecture, within the price cap, cheapest first. */
function autoCandidates(types: ServerType[], location: string, choice: TypeChoice): ServerType[] {
  const price = (t: ServerType): number => hourlyPrice(t, location) ?? Number.POSITIVE_INFINITY;
  const orderable = types.filter((t) => isOrderable(t, location) && t.architecture === choice.arch && Number.isFinite(price(t)));
  if (orderable.length === 0) return [];
  const cap = choice.maxPrice ?? Math.min(...orderable.map(price)) * AUTO_PRICE_FACTOR;
  return orderable.filter((t) => price(t) <= cap + 1e-9).sort((a, b) => price(a) - price(b) || a.name.localeCompare(b.name));
}

/**
 * The server types to try, best first. `auto`: the orderable types of the architecture (x86 unless
 * `--arch arm64`) up to 1.5× the cheapest one's price or `--max-price`, cheapest first, so that when
 * one is sold out the next is tried, but never a dedicated-vCPU type at four times the price. A named
 * type must exist and be orderable in the location.
 */
export function candidateTypes(types: ServerType[], location: string, choice: TypeChoice): ServerType[] {
  if (choice.requested !== 'auto') {
    const orderable = types.filter((t) => isOrderable(t, location));
    const type = types.find((t) => t.name === choice.requested);
    if (!type) throw new SwarmConfigError(`unknown server type "${choice.requested}"; orderable in ${location}: ${names(orderable)}`);
    if (!isOrderable(type, location)) {
      const why = type.deprecated || type.deprecation ? 'is deprecated' : `is not available in ${location}`;
      throw new SwarmConfigError(`server type ${choice.requested} ${why}; orderable there: ${names(orderable)} (or --type auto)`);
    }
    return [type];
  }
  const candidates = autoCandidates(types, location, choice);
  if (candidates.length === 0) {
    const others = otherLocations(types, location, choice);
    const cap = choice.maxPrice === undefined ? '' : ` at most ${choice.maxPrice} €/h`;
    throw new SwarmConfigError(`no ${choice.arch} server type${cap} can be ordered in ${location} now${others.length ? `; try ${others.join(', ')}` : ''}`);
  }
  return candidates;
}

/** Locations other than `location` where `auto` would find a type to order (named when `location` refuses). */
export function otherLocations(types: ServerType[], location: string, choice: TypeChoice): string[] {
  const all = [...new Set(types.flatMap((t) => t.locations.map((l) => l.name)))].sort();
  return all.filter((l) => l !== location && (choice.requested === 'auto' ? autoCandidates(types, l, choice).length > 0 : types.some((t) => t.name === choice.requested && isOrderable(t, l))));
}

function names(types: ServerType[]): string {
  return types.length ? types.map((t) => t.name).join(', ') : 'none';
}

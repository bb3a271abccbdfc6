/**
 * The parts of the Hetzner Cloud API objects cah reads, as the official OpenAPI spec defines them
 * (`/work/shared/data/hetzner/cloud.spec.json`). Servers carry no `datacenter` field: Hetzner removed
 * it, and nothing here may depend on it.
 */

export type ServerStatus = 'running' | 'initializing' | 'starting' | 'stopping' | 'off' | 'deleting' | 'migrating' | 'rebuilding' | 'unknown';

export interface Price {
  location: string;
  price_hourly: { net: string; gross: string };
  price_monthly: { net: string; gross: string };
}

export interface Deprecation {
  unavailable_after: string;
  announced: string;
}

export interface ServerTypeLocation {
  id: number;
  name: string;
  deprecation: Deprecation | null;
  recommended: boolean;
  available: boolean;
}

export interface ServerType {
  id: number;
  name: string;
  cores: number;
  memory: number;
  disk: number;
  deprecated: boolean;
  deprecation?: Deprecation | null;
  prices: Price[];
  cpu_type: 'shared' | 'dedicated';
  architecture: 'x86' | 'arm';
  locations: ServerTypeLocation[];
}

export interface Location {
  id: number;
  name: string;
  city: string;
  country: string;
  network_zone: string;
}

export interface Server {
  id: number;
  name: string;
  status: ServerStatus;
  created: string;
  public_net: {
    ipv4: { ip: string } | null;
    ipv6: { ip: string } | null;
  };
  server_type: ServerType;
  location: Location;
  labels: Record<string, string>;
}

export interface Action {
  id: number;
  command: string;
  status: 'running' | 'success' | 'error';
  progress: number;
  error: { code: string; message: string } | null;
}

export interface SshKey {
  id: number;
  name: string;
  fingerprint: string;
  public_key: string;
  labels: Record<string, string>;
}

export interface Pagination {
  page: number;
  per_page: number;
  next_page: number | null;
  last_page: number | null;
  total_entries: number | null;
}

export interface CreateServerRequest {
  name: string;
  server_type: string;
  image: string;
  location: string;
  /** IDs (integers) or names: never an ID as a string, which the API looks up as a name. */
  ssh_keys: (number | string)[];
  labels: Record<string, string>;
  user_data: string;
  start_after_create: boolean;
}

export interface CreateServerResponse {
  server: Server;
  action: Action;
  next_actions: Action[];
}

/** The part of `GET /pricing` cah reads: what a Primary IP costs per location. */
export interface Pricing {
  currency: string;
  primary_ips: { type: 'ipv4' | 'ipv6'; prices: { location: string; price_hourly: { net: string; gross: string } }[] }[];
}

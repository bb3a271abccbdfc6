import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsPlugin from 'ajv-formats';
import { sharedData } from './paths.js';

/** The official Hetzner Cloud OpenAPI 3.1 spec, the contract the stand-in and our client are held to. */
export const HETZNER_SPEC_PATH = sharedData('hetzner', 'cloud.spec.json');

/** JSON pointer escaping of one path segment. */
const esc = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Validators for the spec's request and response bodies (ajv's 2020-12 dialect, as OpenAPI 3.1
 * uses). The whole spec is registered as one schema, so `$ref`s into its components resolve.
 */
export class HetznerSpec {
  private readonly ajv: Ajv2020;
  private readonly cache = new Map<string, ValidateFunction | null>();
  private readonly spec: { paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>> };

  constructor(path: string = HETZNER_SPEC_PATH) {
    this.spec = JSON.parse(readFileSync(path, 'utf8'));
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    // ajv-formats is CommonJS: under NodeNext its default import is module.exports, whose .default is the plugin.
    formatsPlugin.default(this.ajv);
    for (const format of ['int32', 'int64', 'float', 'double']) this.ajv.addFormat(format, { type: 'number', validate: () => true });
    this.ajv.addFormat('decimal', /^-?\d+(\.\d+)?$/);
    acceptIdsOrNames(this.spec);
    this.ajv.addSchema({ ...this.spec, $id: 'hcloud' });
  }

  private validator(pointer: string): ValidateFunction | null {
    if (!this.cache.has(pointer)) this.cache.set(pointer, this.ajv.getSchema(`hcloud#${pointer}`) ?? null);
    return this.cache.get(pointer)!;
  }

  private operation(method: string, template: string): { requestBody?: unknown; responses: Record<string, unknown> } {
    const op = this.spec.paths[template]?.[method.toLowerCase()];
    if (!op) throw new Error(`the spec has no ${method} ${template}`);
    return op;
  }

  private check(pointer: string, body: unknown): string[] {
    const validate = this.validator(pointer);
    if (!validate) return [`no schema at ${pointer}`];
    return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
  }

  /** Errors of a request body against `requestBody` (none: valid). */
  request(method: string, template: string, body: unknown): string[] {
    if (!this.operation(method, template).requestBody) return [];
    return this.check(`/paths/${esc(template)}/${method.toLowerCase()}/requestBody/content/${esc('application/json')}/schema`, body);
  }

  /** Errors of a response body for its status (`4xx` / `5xx` for errors); 204 has no body. */
  response(method: string, template: string, status: number, body: unknown): string[] {
    const responses = this.operation(method, template).responses;
    const key = String(status) in responses ? String(status) : `${String(status)[0]}xx`;
    if (!(key in responses)) return [`status ${status} is not a documented response of ${method} ${template}`];
    const content = (responses[key] as { content?: Record<string, unknown> }).content;
    if (!content) return body === undefined ? [] : [`status ${status} of ${method} ${template} has no body`];
    return this.check(`/paths/${esc(template)}/${method.toLowerCase()}/responses/${key}/content/${esc('application/json')}/schema`, body);
  }
}

/**
 * `POST /servers` takes `server_type`, `image`, `location` and `ssh_keys` as "ID (integer) or name
 * (string)", as its text says and the official clients send (hcloud-go marshals IDs as integers);
 * the schema types them string only, so it is widened to what the API accepts.
 */
function acceptIdsOrNames(spec: { paths: Record<string, Record<string, { requestBody?: unknown }>> }): void {
  const body = spec.paths['/servers']?.['post']?.requestBody as { content: Record<string, { schema: { properties: Record<string, { type?: unknown; items?: { type?: unknown } }> } }> } | undefined;
  const props = body?.content['application/json']?.schema.properties;
  if (!props) throw new Error('the spec has no POST /servers body');
  for (const field of ['server_type', 'image', 'location']) props[field]!.type = ['string', 'integer'];
  props['ssh_keys']!.items!.type = ['string', 'integer'];
}

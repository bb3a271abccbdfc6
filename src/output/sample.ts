import type { WireSample } from '../wire/contract.js';

/** The longest `exif` value: EXIF may carry tens of KB of maker notes and text; a dataset row wants the tags. */
export const MAX_EXIF_CHARS = 8192;

/** img2dataset's per-sample statuses: what a worker may send. */
export const WORKER_STATUSES = ['success', 'failed_to_download', 'failed_to_resize'] as const;
/** A sample's status in the dataset: the worker's, or filtered_out for pairs the filter rejected. */
export type SampleStatus = (typeof WORKER_STATUSES)[number] | 'filtered_out';

/**
 * How a field holds its value. In the record `text` and `status` are always set and the others
 * may be null; on the wire (proto3, no nulls) null travels as the type's default ('' or 0 or no
 * bytes) and a default reads back as null. Every size and count is positive when known.
 */
interface Kinds {
  text: { record: string; wire: string; parquet: 'STRING' };
  status: { record: SampleStatus; wire: string; parquet: 'STRING' };
  optionalText: { record: string | null; wire: string; parquet: 'STRING' };
  count: { record: number | null; wire: number; parquet: 'INT32' };
  score: { record: number | null; wire: never; parquet: 'DOUBLE' };
  bytes: { record: Buffer | null; wire: Buffer; parquet: never };
}
type Kind = keyof Kinds;

interface FieldSpec {
  /** The record's (and the proto's, camelCased) name. */
  field: string;
  /** The parquet column and tar .json key; null: not in the dataset's metadata. */
  column: string | null;
  kind: Kind;
  /** Sent by the worker in the proto's Sample (the others are the coordinator's own). */
  wire: boolean;
}

/**
 * A sample, described once: the record the worker makes and the coordinator writes, the parquet
 * columns and tar .json keys (img2dataset's, in this order), and the proto Sample fields. The
 * types, the parquet schema and the conversions below all follow from this table.
 */
export const SAMPLE_FIELDS = [
  { field: 'key', column: 'key', kind: 'text', wire: true },
  { field: 'url', column: 'url', kind: 'text', wire: true },
  { field: 'caption', column: 'caption', kind: 'text', wire: true },
  { field: 'pageUrl', column: 'page_url', kind: 'text', wire: true },
  { field: 'license', column: 'license', kind: 'optionalText', wire: true },
  { field: 'status', column: 'status', kind: 'status', wire: true },
  { field: 'errorMessage', column: 'error_message', kind: 'optionalText', wire: true },
  { field: 'width', column: 'width', kind: 'count', wire: true },
  { field: 'height', column: 'height', kind: 'count', wire: true },
  { field: 'originalWidth', column: 'original_width', kind: 'count', wire: true },
  { field: 'originalHeight', column: 'original_height', kind: 'count', wire: true },
  // EXIF tags as a JSON object of text values ("Image Make": …), when the run asks (--extract-exif).
  { field: 'exif', column: 'exif', kind: 'optionalText', wire: true },
  // sha256 hex of the image bytes as downloaded (img2dataset's compute_hash).
  { field: 'sha256', column: 'sha256', kind: 'optionalText', wire: true },
  // CLIP cosine similarity: the coordinator's filter sets it; null when none ran or no image.
  { field: 'similarity', column: 'similarity', kind: 'score', wire: false },
  // Downloads tried (1 + retries of transient failures).
  { field: 'downloadAttempts', column: 'download_attempts', kind: 'count', wire: true },
  // The resized JPEG: in the tar for a kept success, never in the metadata.
  { field: 'jpeg', column: null, kind: 'bytes', wire: true },
  // Download and resize time in milliseconds, for the shard's stats.
  { field: 'downloadMs', column: null, kind: 'count', wire: true },
  { field: 'resizeMs', column: null, kind: 'count', wire: true },
] as const satisfies readonly FieldSpec[];

type Field = (typeof SAMPLE_FIELDS)[number];
type Column = Extract<Field, { column: string }>;
type WireField = Extract<Field, { wire: true }>;

/** One candidate after the worker tried it: metadata for every candidate, image bytes for successes. */
export type SampleRecord = { -readonly [F in Field as F['field']]: Kinds[F['kind']]['record'] };
/** One row of the parquet (and, with the filter's extra columns, a tar .json). */
export type MetadataRow = { [C in Column as C['column']]: Kinds[C['kind']]['record'] };
/** What the table says the proto's Sample holds; tests check it equals the generated WireSample. */
export type WireSampleShape = { [F in WireField as F['field']]: Kinds[F['kind']]['wire'] };
/** The fields a new record must be given; every other one starts null. */
type RequiredField = Extract<Field, { kind: 'text' | 'status' }>['field'];

const PARQUET_TYPE: { [K in Exclude<Kind, 'bytes'>]: Kinds[K]['parquet'] } = { text: 'STRING', status: 'STRING', optionalText: 'STRING', count: 'INT32', score: 'DOUBLE' };

/** The dataset's metadata columns, in order: parquet name and type. */
export const METADATA_COLUMNS: readonly { name: Column['column']; type: Kinds[Column['kind']]['parquet'] }[] = SAMPLE_FIELDS.flatMap((f) =>
  f.column === null ? [] : [{ name: f.column, type: PARQUET_TYPE[f.kind] }],
);

/** A record with the required fields given and every field not given null. */
export function newSample(init: Pick<SampleRecord, RequiredField> & Partial<SampleRecord>): SampleRecord {
  const record: Record<string, unknown> = {};
  for (const f of SAMPLE_FIELDS) record[f.field] = null;
  return { ...record, ...init } as SampleRecord;
}

/** The record's metadata in the dataset's column order. */
export function metadataRow(sample: SampleRecord): MetadataRow {
  const row: Record<string, unknown> = {};
  for (const f of SAMPLE_FIELDS) if (f.column !== null) row[f.column] = sample[f.field];
  return row as MetadataRow;
}

/** The sample as the worker sends it: nulls become proto3 defaults, numbers whole (uint32). */
export function sampleToWire(sample: SampleRecord): WireSample {
  const wire: Partial<Record<keyof WireSample, unknown>> = {};
  for (const f of SAMPLE_FIELDS) {
    if (!f.wire) continue;
    const value = sample[f.field];
    if (f.kind === 'count') wire[f.field] = Math.round((value as number | null) ?? 0);
    else if (f.kind === 'bytes') wire[f.field] = value ?? Buffer.alloc(0);
    else wire[f.field] = value ?? '';
  }
  return wire as WireSample;
}

/**
 * The record a wire sample describes, by the table's null rules only: the coordinator's checks
 * (key format, status, image bytes, URLs) are its own.
 */
export function sampleFromWire(wire: WireSample): SampleRecord {
  const record: Record<string, unknown> = {};
  for (const f of SAMPLE_FIELDS) {
    if (!f.wire) {
      record[f.field] = null;
      continue;
    }
    const value = wire[f.field];
    if (f.kind === 'count') record[f.field] = (value as number) > 0 ? value : null;
    else if (f.kind === 'bytes') record[f.field] = (value as Buffer).length > 0 ? value : null;
    else if (f.kind === 'optionalText') record[f.field] = value === '' ? null : value;
    else record[f.field] = value;
  }
  return record as SampleRecord;
}

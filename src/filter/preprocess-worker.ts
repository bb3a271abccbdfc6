import { parentPort, workerData } from 'node:worker_threads';
import { decodeToModelRgb, writePlanar, type ImagePreprocessing, type PixelDType } from './image-preprocess.js';

/** Options the pool starts each preprocessing thread with. */
export interface PreprocessWorkerData {
  preprocessing: ImagePreprocessing;
  dtype: PixelDType;
  /** Per-image decode time limit, whole seconds (default: DEFAULT_DECODE_TIMEOUT_SECONDS). */
  decodeTimeoutSeconds?: number;
}

/** One chunk of a batch: decode `images` and write them into `target` from image slot `firstSlot` on. */
export interface PreprocessJob {
  id: number;
  images: Uint8Array[];
  target: SharedArrayBuffer;
  firstSlot: number;
}

export interface PreprocessJobResult {
  id: number;
  /** Per image: null when written, else why the image could not be used (its slot is zeroed). */
  errors: (string | null)[];
}

/** Images decoding at once per thread: libvips decodes the next while JS normalises the current. */
const IN_FLIGHT = 2;

const { preprocessing, dtype, decodeTimeoutSeconds } = workerData as PreprocessWorkerData;
const plane = preprocessing.width * preprocessing.height * 3;

async function runJob(job: PreprocessJob): Promise<PreprocessJobResult> {
  const out = dtype === 'float32' ? new Float32Array(job.target) : new Uint16Array(job.target);
  const errors: (string | null)[] = new Array(job.images.length).fill(null);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < job.images.length) {
      const i = next++;
      try {
        const rgb = await decodeToModelRgb(job.images[i]!, preprocessing, decodeTimeoutSeconds);
        writePlanar(rgb, preprocessing, out, (job.firstSlot + i) * plane, dtype);
      } catch (err) {
        errors[i] = err instanceof Error ? err.message : String(err);
        out.fill(0, (job.firstSlot + i) * plane, (job.firstSlot + i + 1) * plane);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, job.images.length) }, lane));
  return { id: job.id, errors };
}

parentPort!.on('message', (job: PreprocessJob) => {
  void runJob(job).then((result) => parentPort!.postMessage(result));
});

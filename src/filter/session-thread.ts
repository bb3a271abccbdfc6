import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { SessionThreadData, SessionThreadReply, SessionThreadRequest, WireTensor } from './remote-session.js';

/**
 * One ONNX Runtime session on its own thread. onnxruntime-node runs inference synchronously on the
 * calling thread; here that is this worker, so the coordinator's event loop stays free.
 */
ort.env.logLevel = 'fatal';
const { path, options } = workerData as SessionThreadData;
const port = parentPort!;

function toWire(tensor: ort.Tensor): WireTensor {
  return { type: tensor.type as WireTensor['type'], data: tensor.data as WireTensor['data'], dims: [...tensor.dims] };
}

try {
  const session = await ort.InferenceSession.create(path, options);
  const ready: SessionThreadReply = {
    kind: 'ready',
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    inputMetadata: [...session.inputMetadata],
    outputMetadata: [...session.outputMetadata],
  };
  port.postMessage(ready);
  port.on('message', (request: SessionThreadRequest) => {
    void (async () => {
      if (request.kind === 'release') {
        await session.release();
        port.postMessage({ kind: 'released', id: request.id } satisfies SessionThreadReply);
        return;
      }
      try {
        // onnxruntime-node refuses tensors over shared memory: the copy is made here, off the event loop.
        const plain = (t: WireTensor): WireTensor['data'] => (t.data.buffer instanceof SharedArrayBuffer ? t.data.slice() : t.data);
        const feeds = Object.fromEntries(Object.entries(request.feeds).map(([name, t]) => [name, new ort.Tensor(t.type, plain(t), t.dims)]));
        const result = await session.run(feeds);
        const outputs = Object.fromEntries(Object.entries(result).map(([name, t]) => [name, toWire(t)]));
        const transfer = Object.values(outputs).flatMap((t) => (t.data.buffer instanceof ArrayBuffer ? [t.data.buffer] : []));
        port.postMessage({ kind: 'result', id: request.id, outputs } satisfies SessionThreadReply, transfer);
      } catch (err) {
        port.postMessage({ kind: 'error', id: request.id, message: err instanceof Error ? err.message : String(err) } satisfies SessionThreadReply);
      }
    })();
  });
} catch (err) {
  port.postMessage({ kind: 'failed', message: err instanceof Error ? err.message : String(err) } satisfies SessionThreadReply);
}

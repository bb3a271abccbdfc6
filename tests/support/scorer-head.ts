import { DEMO_PALETTE } from '../../src/model/palette.js';
import { demoEmbeddingDim } from '../../src/model/demo-model.js';
import { GraphBuilder } from '../../src/model/onnx-graph.js';

/** The demo embedding's "green" component: the index the greenness head reads. */
export const GREEN = DEMO_PALETTE.findIndex((c) => c.name === 'green');

/** A classifier head on the demo model's image embedding, as an extra scorer: score = its green component. */
export async function writeGreennessScorer(path: string): Promise<void> {
  const D = demoEmbeddingDim();
  const g = new GraphBuilder('greenness');
  const x = g.input('embedding', 'float', ['batch', D]);
  const w = new Float32Array(D);
  w[GREEN] = 1;
  g.op('MatMul', [x, g.constFloat(w, [D, 1])], {}, 'score');
  g.output('score', 'float', ['batch', 1]);
  await g.write(path);
}

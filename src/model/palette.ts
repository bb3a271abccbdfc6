/**
 * The demo web's vocabulary. Fixture images are filled with one of these colours (a shape drawn in
 * it on a neutral background); captions name a colour. A matched pair names the image's colour,
 * a mismatched pair names another. The demo CLIP model (src/model, `cah model demo`) is built
 * from this palette so that matched pairs score high and mismatched pairs low.
 */
export interface PaletteColour {
  name: string;
  rgb: readonly [number, number, number];
}

export const DEMO_PALETTE: readonly PaletteColour[] = [
  { name: 'red', rgb: [220, 30, 30] },
  { name: 'green', rgb: [30, 170, 60] },
  { name: 'blue', rgb: [30, 70, 220] },
  { name: 'yellow', rgb: [240, 220, 40] },
  { name: 'purple', rgb: [140, 50, 170] },
  { name: 'orange', rgb: [245, 140, 20] },
];

export const DEMO_SHAPES: readonly string[] = ['square', 'circle', 'triangle'];

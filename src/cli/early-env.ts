// Settings that modules read when they are first evaluated; ESM evaluates imports first, so this
// is its own module, imported before any other by main.ts.

// React (the dashboard) must load its production build: the development build doubles the redraw
// cost and keeps timing entries forever.
process.env['NODE_ENV'] ??= 'production';

// ink renders only the final frame when CI is set (it assumes output goes to a log). On a terminal
// the user asked for the live dashboard, so the CI markers are dropped for this process.
if (process.stdout.isTTY) {
  delete process.env['CI'];
  delete process.env['CONTINUOUS_INTEGRATION'];
}

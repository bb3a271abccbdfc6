// React (the dashboard) must load its production build: the development build doubles the redraw
// cost and keeps timing entries forever. ESM evaluates imports first, so this is its own module.
process.env['NODE_ENV'] ??= 'production';

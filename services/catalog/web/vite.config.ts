import { defineConfig } from 'vite';

// Preact's JSX through the automatic runtime (oxc): no plugin needed. Static files only: the
// catalog serves `dist/` at `/`; the CSP allows scripts and styles from the same origin alone.
export default defineConfig({
  root: import.meta.dirname,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, modulePreload: { polyfill: false }, cssCodeSplit: false },
});

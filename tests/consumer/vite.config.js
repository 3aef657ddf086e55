import { defineConfig } from 'vite';

export default defineConfig({
  // The package loads its .wasm and weights with new URL(..., import.meta.url); Vite's dependency
  // pre-bundling would break those URLs in `vite dev`, so the package is excluded from it.
  optimizeDeps: { exclude: ['r2unet-wasm'] },
  build: { target: 'es2022' },
});

/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// The console is served by Kiln's signaling listener at /console/ (src/protocols/signaling-server.ts).
export default defineConfig({
  root: import.meta.dirname,
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 400,
  },
  test: {
    include: ['src/**/*.spec.ts'],
    environment: 'node',
  },
});

import { defineConfig } from 'vite';

// The records console is served by the FHIR server at /console (src/http/console.ts) from console/dist.
export default defineConfig({
  base: '/console/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The CSP (script-src 'self') forbids inline scripts; Vite emits none with this on.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 300,
  },
});

/**
 * The package's own files, as the CLI finds them. Relative to this module, which sits one
 * directory below the code root both in `src/` and in the built `dist/` (where it is bundled
 * into `cli/main.js` or a chunk beside it: scripts/build.ts), so the same paths hold in both.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The register module in the same flavour as this file (.ts in src, .js in dist). */
export function registerUrl(): string {
  const ext = extname(new URL(import.meta.url).pathname) || '.js';
  return new URL(`../loader/register${ext}`, import.meta.url).href;
}

/** The package's package.json. */
export function packageJsonPath(): string {
  return fileURLToPath(new URL('../../package.json', import.meta.url));
}

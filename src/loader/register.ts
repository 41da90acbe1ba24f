/**
 * `node --import livepatch/register app.js`: install the loader, configured from the environment
 * (LIVEPATCH_INCLUDE, LIVEPATCH_EXCLUDE, LIVEPATCH_CACHE, LIVEPATCH_CACHE_DIR, LIVEPATCH_ROOT,
 * LIVEPATCH_SOURCE_MAPS; see docs/loader.md), before the app's first module loads.
 */
import { installLoader } from './index.ts';

installLoader();

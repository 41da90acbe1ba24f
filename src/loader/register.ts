/**
 * `node --import livepatch/register app.js`: install the loader, configured from the environment
 * (LIVEPATCH_INCLUDE, LIVEPATCH_EXCLUDE, LIVEPATCH_CACHE, LIVEPATCH_CACHE_DIR,
 * LIVEPATCH_CACHE_INDEX, LIVEPATCH_ROOT, LIVEPATCH_SOURCE_MAPS; see docs/loader.md), before the
 * app's first module loads. Task sources (HTTP requests, connections) start here too, so work in
 * flight when the first patch is loaded is known to its transition (live frames of async
 * functions are counted by their slots from their module's first line: docs/consistency.md).
 */
import { installTaskSources } from '../transition/sources.ts';
import { installLoader } from './index.ts';

installTaskSources();
installLoader();

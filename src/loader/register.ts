/**
 * `node --import livepatch/register app.js`: install the loader, configured from the environment
 * (LIVEPATCH_INCLUDE, LIVEPATCH_EXCLUDE, LIVEPATCH_CACHE, LIVEPATCH_CACHE_DIR, LIVEPATCH_ROOT,
 * LIVEPATCH_SOURCE_MAPS; see docs/loader.md), before the app's first module loads. Task sources
 * (HTTP requests, connections) and live-frame accounting start here too, so frames that begin
 * before the first patch is loaded are known to its transition.
 */
import { installTaskSources } from '../transition/sources.ts';
import { installLoader } from './index.ts';

installTaskSources();
installLoader();

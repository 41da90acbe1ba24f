/**
 * Shared by the patch-core tests: leave the process without patches between tests, and record
 * the lifecycle events a test causes.
 */
import { getCore } from '../../src/core/api.ts';
import { listPatches, onEvent, type LivepatchEvent } from '../../src/index.ts';

/**
 * Removes every loaded patch, newest first: forces a transition left running, unblocks
 * blockDisable states (meant to stay in production, not between tests), disables, removes.
 */
export async function cleanupPatches(): Promise<void> {
  if (getCore().currentTransition !== null) getCore().force();
  for (const p of [...listPatches()].reverse()) {
    const record = getCore().get(p.name)!;
    for (const st of record.states) (st.def as { blockDisable?: boolean }).blockDisable = false;
    if (record.status === 'enabled')
      await getCore()
        .disable(record)
        .catch(() => undefined);
    if (record.status === 'disabled') getCore().remove(record);
  }
}

/** Collects events until `stop()` is called. */
export function recordEvents(): { events: LivepatchEvent[]; stop: () => void } {
  const events: LivepatchEvent[] = [];
  const stop = onEvent((e) => events.push(e));
  return { events, stop };
}

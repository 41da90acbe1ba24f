/**
 * Lifecycle events: every step of a patch's life is one structured event, delivered to in-process
 * subscribers and written as a log line — human by default, JSON lines with LIVEPATCH_LOG=json,
 * nothing with LIVEPATCH_LOG=off. The catalogue is in docs/events.md.
 */
export type EventType =
  | 'patch.loaded'
  | 'patch.refused'
  | 'patch.enabling'
  | 'patch.enabled'
  | 'patch.disabling'
  | 'patch.disabled'
  | 'patch.removed'
  | 'object.patched'
  | 'object.unpatched'
  | 'module.patched-on-load'
  | 'module.load-refused'
  | 'transition.started'
  | 'transition.completed'
  | 'transition.reversed'
  | 'transition.forced'
  | 'transition.tasks-switched'
  | 'transition.stalled'
  | 'state.callback'
  | 'state.carried';

export interface LivepatchEvent {
  readonly type: EventType;
  /** ISO-8601 time of the event. */
  readonly time: string;
  readonly patch?: string;
  /** Module (app-relative path) for object and module events. */
  readonly module?: string;
  /** Functions involved, as qualified names. */
  readonly functions?: readonly string[];
  /** Transition target for transition and patch events. */
  readonly target?: 'patched' | 'unpatched';
  /** Why something was refused, or extra detail. */
  readonly reason?: string;
  readonly [key: string]: unknown;
}

export type Listener = (event: LivepatchEvent) => void;

export type LogMode = 'human' | 'json' | 'off';

export class EventBus {
  private readonly listeners = new Set<Listener>();
  private logMode: LogMode;
  private write: (line: string) => void;

  constructor(
    mode: LogMode = parseMode(process.env['LIVEPATCH_LOG']),
    write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {
    this.logMode = mode;
    this.write = write;
  }

  setLog(mode: LogMode, write?: (line: string) => void): void {
    this.logMode = mode;
    if (write !== undefined) this.write = write;
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(type: EventType, fields: Omit<LivepatchEvent, 'type' | 'time'> = {}): LivepatchEvent {
    const event: LivepatchEvent = { type, time: new Date().toISOString(), ...fields };
    if (this.logMode === 'json') this.write(JSON.stringify(event));
    else if (this.logMode === 'human') this.write(humanLine(event));
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        // A subscriber's bug must not break a patch operation half way.
        process.emitWarning(`livepatch: an event listener threw on ${type}: ${String(err)}`);
      }
    }
    return event;
  }
}

function parseMode(value: string | undefined): LogMode {
  return value === 'json' || value === 'off' ? value : 'human';
}

export function humanLine(e: LivepatchEvent): string {
  const p = e.patch !== undefined ? `patch '${e.patch}'` : '';
  const fns =
    e.functions !== undefined && e.functions.length > 0 ? ` (${e.functions.join(', ')})` : '';
  switch (e.type) {
    case 'patch.loaded':
      return `livepatch: loaded ${p}`;
    case 'patch.refused':
      return `livepatch: refused ${p}: ${e.reason ?? ''}`;
    case 'patch.enabling':
      return `livepatch: enabling ${p}`;
    case 'patch.enabled':
      return `livepatch: ${p} enabled`;
    case 'patch.disabling':
      return `livepatch: disabling ${p}`;
    case 'patch.disabled':
      return `livepatch: ${p} disabled`;
    case 'patch.removed':
      return `livepatch: removed ${p}${e.reason !== undefined ? ` (${e.reason})` : ''}`;
    case 'object.patched':
      return `livepatch: ${p} patched ${e.module ?? ''}${fns}`;
    case 'object.unpatched':
      return `livepatch: ${p} unpatched ${e.module ?? ''}${fns}`;
    case 'module.patched-on-load':
      return `livepatch: ${e.module ?? ''} patched by ${p} as it loaded${fns}`;
    case 'module.load-refused':
      return `livepatch: ${e.module ?? ''} failed to load: ${p} cannot patch it: ${e.reason ?? ''}`;
    case 'transition.started':
      return `livepatch: transition of ${p} to ${e.target ?? ''} started`;
    case 'transition.completed':
      return `livepatch: transition of ${p} to ${e.target ?? ''} completed`;
    case 'transition.reversed':
      return `livepatch: transition of ${p} reversed, now to ${e.target ?? ''}`;
    case 'transition.forced':
      return `livepatch: transition of ${p} to ${e.target ?? ''} forced`;
    case 'transition.tasks-switched':
      return `livepatch: ${String(e['switched'])} task(s) switched to ${e.target ?? ''} for ${p}, ${String(e['remaining'])} pending`;
    case 'transition.stalled': {
      const report = e['report'] as
        | {
            pending?: { label: string; reason: string; frames: { function: string }[] }[];
            elapsedMs?: number;
          }
        | undefined;
      const pending = report?.pending ?? [];
      const first = pending
        .slice(0, 3)
        .map(
          (t) =>
            `${t.label} (${t.reason}${t.frames.length > 0 ? `: ${t.frames.map((f) => f.function).join(', ')}` : ''})`,
        );
      return `livepatch: transition of ${p} stalled for ${String(report?.elapsedMs ?? '?')} ms: ${pending.length} task(s) pending: ${first.join('; ')}${pending.length > 3 ? '; …' : ''}`;
    }
    case 'state.callback':
      return `livepatch: ${String(e['callback'])} of state '${String(e['state'])}' (${p}) ${e.reason !== undefined ? `failed: ${e.reason}` : 'ran'}`;
    case 'state.carried':
      return `livepatch: state '${String(e['state'])}' carried from patch '${String(e['from'])}' to ${p}`;
  }
}

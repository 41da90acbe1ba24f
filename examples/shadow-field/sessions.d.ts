export interface Session {
  readonly id: string;
  requests: number;
}
export function open(id: string): Session;
export function touch(session: Session): number;
export function describe(session: Session): string;
export function all(): Session[];

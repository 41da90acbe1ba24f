// A session store whose objects lack a field the fix needs: when each session was last used.
const sessions = new Map();

export function open(id) {
  const session = { id, requests: 0 };
  sessions.set(id, session);
  return session;
}

export function touch(session) {
  session.requests++;
  return session.requests;
}

export function describe(session) {
  return `${session.id}: ${session.requests} requests`;
}

export function all() {
  return [...sessions.values()];
}

// A counter whose increment is not safe across an await: two concurrent calls can lose an update.
let value = 0;

export async function increment(step) {
  const read = value;
  await new Promise((resolve) => setImmediate(resolve));
  value = read + step;
  return value;
}

export function current() {
  return value;
}

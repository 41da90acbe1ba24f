export function increment(step: number): Promise<number>;
export function current(): number;

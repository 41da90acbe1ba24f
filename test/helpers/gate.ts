/**
 * Promise primitives that let a test decide exactly when asynchronous work proceeds.
 * Tests order concurrent events with these, never with sleeps or timers.
 */

/** A promise with its resolve and reject functions exposed. */
export class Deferred<T = void> {
  readonly promise: Promise<T>;
  /** True once resolve or reject has been called. */
  settled = false;
  #resolve!: (value: T | PromiseLike<T>) => void;
  #reject!: (reason?: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  resolve = (value: T | PromiseLike<T>): void => {
    this.settled = true;
    this.#resolve(value);
  };

  reject = (reason?: unknown): void => {
    this.settled = true;
    this.#reject(reason);
  };
}

/**
 * A gate that stays closed until the test opens it. Any number of waiters may wait on it;
 * all of them resolve, with the value given to `open`, once it is opened. Waiting on an open
 * gate resolves on the next microtask turn.
 */
export class Gate<T = void> {
  #deferred = new Deferred<T>();
  #opened = false;
  #waiters = 0;

  /** True once `open` has been called. */
  get opened(): boolean {
    return this.#opened;
  }

  /** How many times `wait` has been called; lets a test check that work reached the gate. */
  get waiters(): number {
    return this.#waiters;
  }

  /** A promise that resolves with the gate's value when the gate opens. */
  wait(): Promise<T> {
    this.#waiters++;
    return this.#deferred.promise;
  }

  /** Open the gate, releasing every current and future waiter. Opening twice is an error. */
  open(...value: T extends void ? [value?: T] : [value: T]): void {
    if (this.#opened) throw new Error('Gate.open: the gate is already open');
    this.#opened = true;
    this.#deferred.resolve(value[0] as T);
  }
}

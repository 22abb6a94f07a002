/**
 * What every receiver's async iterator shares after its own `next()`: the ending half of the
 * `AsyncGenerator` protocol. A receiver's iterator (`IpcReceiver`, `MuxReceiver`) is a plain object
 * rather than an async generator, which costs a generator's own promises per step; this base gives
 * it the rest of what a generator does: `return()` and `throw()` end it (a later `next()` is done),
 * it is its own async iterable, and `await using` ends it.
 * @internal
 */
export abstract class IteratorTail<T> implements AsyncGenerator<T, void, undefined> {
  /** Set once the iteration has ended: by return(), throw(), DISCONNECTED or an error of a step. */
  finished = false;

  abstract next(): Promise<IteratorResult<T, void>>;

  return(value?: void | PromiseLike<void>): Promise<IteratorResult<T, void>> {
    this.finished = true;
    return Promise.resolve(value).then((v) => ({ value: v, done: true }));
  }

  throw(e: unknown): Promise<IteratorResult<T, void>> {
    this.finished = true;
    return Promise.reject(e);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}

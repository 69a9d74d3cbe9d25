/**
 * An in-memory Lease API server for in-process controllers under leader election: one
 * Lease with resourceVersion concurrency, and a connection per controller that can be made
 * to fail (as an API server the client cannot reach, or refuses, would).
 */
import {
  type Lease,
  type LeaseApi,
  LeaseConflictError,
  type LeaseRecord,
} from '../../services/controller/leader/lease-api';

export class MemoryLeaseStore {
  private lease?: { rv: number; record: LeaseRecord };
  private rv = 0;

  /** The identity holding the Lease now ('' when released), if it exists. */
  holder(): string | undefined {
    return this.lease?.record.holderIdentity;
  }

  snapshot(): Lease | undefined {
    return (
      this.lease && { resourceVersion: String(this.lease.rv), record: { ...this.lease.record } }
    );
  }

  write(expectRv: string | undefined, record: LeaseRecord): Lease {
    if (expectRv === undefined ? this.lease : String(this.lease?.rv) !== expectRv)
      throw new LeaseConflictError();
    this.lease = { rv: ++this.rv, record: { ...record } };
    return this.snapshot()!;
  }

  /** One controller's connection to this store. */
  api(name: string): MemoryLeaseApi {
    return new MemoryLeaseApi(this, name);
  }
}

export class MemoryLeaseApi implements LeaseApi {
  /** Set: every call fails with this message (the API server cannot be reached). */
  failWith?: string;

  constructor(
    private readonly store: MemoryLeaseStore,
    private readonly name: string,
  ) {}

  describe(): string {
    return `memory lease (${this.name})`;
  }

  private call<T>(fn: () => T): Promise<T> {
    if (this.failWith !== undefined) return Promise.reject(new Error(this.failWith));
    return new Promise<T>((resolve) => resolve(fn()));
  }

  get(): Promise<Lease | undefined> {
    return this.call(() => this.store.snapshot());
  }

  create(record: LeaseRecord): Promise<Lease> {
    return this.call(() => this.store.write(undefined, record));
  }

  replace(resourceVersion: string, record: LeaseRecord): Promise<Lease> {
    return this.call(() => this.store.write(resourceVersion, record));
  }
}

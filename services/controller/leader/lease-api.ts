/**
 * The slice of the coordination.k8s.io/v1 Lease API the elector needs, so that the elector
 * can be tested with an in-memory fake and run on the real client (kube-lease-api.ts).
 */

/** A Lease's spec as the elector reads and writes it (times in ms since the epoch). */
export interface LeaseRecord {
  /** Empty or absent: nobody holds the Lease (released). */
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTimeMs?: number;
  renewTimeMs?: number;
  leaseTransitions?: number;
}

export interface Lease {
  /** metadata.resourceVersion: a replace names it, and fails with a conflict if it moved. */
  resourceVersion: string;
  record: LeaseRecord;
}

/** 409 from the API server: the Lease was created or changed by someone else meanwhile. */
export class LeaseConflictError extends Error {
  constructor(message = 'the Lease was changed by someone else (409 Conflict)') {
    super(message);
    this.name = 'LeaseConflictError';
  }
}

/** One named Lease in one namespace. */
export interface LeaseApi {
  /** undefined when the Lease does not exist (404). */
  get(): Promise<Lease | undefined>;
  /** Throws LeaseConflictError when it already exists. */
  create(record: LeaseRecord): Promise<Lease>;
  /** Optimistic concurrency: throws LeaseConflictError when resourceVersion is not current. */
  replace(resourceVersion: string, record: LeaseRecord): Promise<Lease>;
  /** Where it talks to, for logs (e.g. `https://10.96.0.1:443 lease default/name`). */
  describe(): string;
}

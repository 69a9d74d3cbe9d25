/**
 * What the security layer tells the core about a node stream it admitted: which node
 * UUIDs its credential may claim. A credential bound to UUIDs (a token line
 * `TOKEN UUID[,UUID...]`, a node certificate carrying its UUID) may claim only those; a
 * refused claim is logged and counted by `refuseClaim` and never displaces the stream
 * that holds the UUID.
 */
export interface NodeAdmission {
  mayClaim(uuid: string): boolean;
  /** Logs and counts a refused claim (auth_failures_total{reason="uuid_not_allowed"}). */
  refuseClaim(uuid: string): void;
}

/** A credential not bound to UUIDs, or no authentication at all: any UUID may be claimed. */
export const ANY_UUID: NodeAdmission = {
  mayClaim: () => true,
  refuseClaim: () => {},
};

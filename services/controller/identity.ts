/**
 * What the security layer tells the core about a node stream it admitted: which node
 * UUIDs its credential may claim. A credential bound to UUIDs (a token line
 * `TOKEN UUID[,UUID...]`, a node certificate carrying its UUID) may claim only those; an
 * unbound credential may claim any UUID that no token line binds, and never one held by a
 * stream whose credential is bound to it (the core checks that, it knows the holders). A
 * refused claim is logged and counted by `refuseClaim` and never displaces the holder.
 */
export interface NodeAdmission {
  /** The credential names the UUIDs it may claim. */
  readonly bound: boolean;
  mayClaim(uuid: string): boolean;
  /** Logs and counts a refused claim (auth_failures_total{reason="uuid_not_allowed"}). */
  refuseClaim(uuid: string, because: string): void;
}

/** No authentication at all: any UUID may be claimed. */
export const ANY_UUID: NodeAdmission = {
  bound: false,
  mayClaim: () => true,
  refuseClaim: () => {},
};

/**
 * Why `claimant` may not take `uuid` from `holder` (the stream holding it now, if any), or
 * undefined when it may. A bound holder is displaced only by a credential bound to it too.
 */
export function claimRefusal(
  uuid: string,
  claimant: NodeAdmission,
  holder: NodeAdmission | undefined,
): string | undefined {
  if (!claimant.mayClaim(uuid)) return 'the credential is not bound to this UUID';
  if (holder?.bound && !claimant.bound)
    return 'a stream whose credential is bound to this UUID holds it';
  return undefined;
}

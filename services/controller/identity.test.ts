/**
 * claimRefusal (identity.ts): which node UUID a credential may claim, and whether it may
 * take that UUID from the stream holding it now.
 */
import { ANY_UUID, type NodeAdmission, claimRefusal } from './identity';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

/** A credential bound to `uuids` (a token line `TOKEN UUID,...`, a node certificate). */
const boundTo = (...uuids: string[]): NodeAdmission => ({
  bound: true,
  mayClaim: (u) => uuids.includes(u),
  refuseClaim: () => {},
});
/** An unbound credential: any UUID no token line binds (here: all but `taken`). */
const unbound = (...taken: string[]): NodeAdmission => ({
  bound: false,
  mayClaim: (u) => !taken.includes(u),
  refuseClaim: () => {},
});

describe('claimRefusal', () => {
  test('without authentication any UUID may be claimed, from anyone', () => {
    expect(claimRefusal(A, ANY_UUID, undefined)).toBeUndefined();
    expect(claimRefusal(A, ANY_UUID, ANY_UUID)).toBeUndefined();
    expect(ANY_UUID.mayClaim(B)).toBe(true);
  });

  test('a bound credential may claim only its own UUIDs', () => {
    expect(claimRefusal(A, boundTo(A), undefined)).toBeUndefined();
    expect(claimRefusal(B, boundTo(A), undefined)).toBe('the credential is not bound to this UUID');
  });

  test('an unbound credential may not claim a UUID that a token line binds', () => {
    expect(claimRefusal(A, unbound(A), undefined)).toBe('the credential is not bound to this UUID');
    expect(claimRefusal(B, unbound(A), undefined)).toBeUndefined();
  });

  test('a stream with a bound credential is displaced only by a credential bound to its UUID too', () => {
    expect(claimRefusal(A, unbound(), boundTo(A))).toBe(
      'a stream whose credential is bound to this UUID holds it',
    );
    expect(claimRefusal(A, boundTo(A), boundTo(A))).toBeUndefined();
  });

  test('a stream with an unbound credential may be displaced by either kind', () => {
    expect(claimRefusal(A, unbound(), unbound())).toBeUndefined();
    expect(claimRefusal(A, boundTo(A), unbound())).toBeUndefined();
  });

  test('the credential is checked before the holder', () => {
    expect(claimRefusal(B, boundTo(A), boundTo(B))).toBe(
      'the credential is not bound to this UUID',
    );
  });
});

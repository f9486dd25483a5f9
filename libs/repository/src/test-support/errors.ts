import { expect } from 'vitest';
import { RepositoryError } from '../errors.ts';

/** The RepositoryError a promise rejects with (the test fails if it resolves or rejects otherwise). */
export async function errorOf(promise: Promise<unknown>): Promise<RepositoryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RepositoryError);
  return error as RepositoryError;
}

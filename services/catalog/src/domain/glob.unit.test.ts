import { describe, expect, it } from 'vitest';
import { compileGlob, InvalidGlobError } from './glob.ts';

describe('compileGlob', () => {
  it('given a pattern without a slash, when matching, then it matches base names anywhere', () => {
    const glob = compileGlob('*.sql');
    expect(glob.matches('/dump.sql')).toBe(true);
    expect(glob.matches('/backups/2025/dump.sql')).toBe(true);
    expect(glob.matches('/dump.sql.gz')).toBe(false);
    expect(compileGlob('dump-?.sql').matches('/a/dump-1.sql')).toBe(true);
    expect(compileGlob('dump-?.sql').matches('/a/dump-12.sql')).toBe(false);
  });

  it('given a pattern with a slash, then it matches the whole volume-relative path', () => {
    expect(compileGlob('app/*.yml').matches('/app/settings.yml')).toBe(true);
    expect(compileGlob('app/*.yml').matches('/app/conf/settings.yml')).toBe(false);
    expect(compileGlob('/app/**/*.yml').matches('/app/conf/deep/settings.yml')).toBe(true);
    expect(compileGlob('app/**/settings.yml').matches('/app/settings.yml')).toBe(true);
    expect(compileGlob('**').matches('/anything/at/all')).toBe(true);
  });

  it('given classes and escapes, then they match literally or as sets', () => {
    expect(compileGlob('file[0-9].txt').matches('/file7.txt')).toBe(true);
    expect(compileGlob('file[!0-9].txt').matches('/file7.txt')).toBe(false);
    expect(compileGlob('file[!0-9].txt').matches('/fileA.txt')).toBe(true);
    expect(compileGlob('what\\?.txt').matches('/what?.txt')).toBe(true);
    expect(compileGlob('what\\?.txt').matches('/whatX.txt')).toBe(false);
    expect(compileGlob('a.b').matches('/aXb')).toBe(false);
    expect(compileGlob('(x)+').matches('/(x)+')).toBe(true);
  });

  it('given a broken pattern, then it says why', () => {
    expect(() => compileGlob('[abc')).toThrow(InvalidGlobError);
    expect(() => compileGlob('abc\\')).toThrow(/escapes nothing/);
    expect(() => compileGlob('')).toThrow(InvalidGlobError);
  });
});

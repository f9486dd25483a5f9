/**
 * File name patterns for `find`: `*` and `?` within one path segment, `**` across segments,
 * `[abc]` / `[a-z]` / `[!a]` classes, `\` escapes the next character. A pattern without `/`
 * matches the base name anywhere (like `find -name`); with a `/` it matches the whole path
 * relative to the volume root (a leading `/` is optional).
 */
export interface Glob {
  readonly pattern: string;
  /** True when the pattern matches a file at `path` (`/`-separated, relative to the volume root). */
  matches(path: string): boolean;
}

/** A pattern that cannot be read (an unclosed `[`, a trailing `\`). */
export class InvalidGlobError extends Error {
  override readonly name = 'InvalidGlobError';
}

function escapeRegExp(char: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char;
}

function toRegExpSource(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new InvalidGlobError(`${pattern}: a trailing \\ escapes nothing`);
      out += escapeRegExp(next);
      i++;
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a bare `**` anything at all.
        if (pattern[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new InvalidGlobError(`${pattern}: [ at ${i} is never closed`);
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      const escaped = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      out += negate ? `[^/${escaped}]` : `[${escaped}]`;
      i = end;
    } else out += escapeRegExp(c);
  }
  return out;
}

/** Compiles a pattern; throws {@link InvalidGlobError}. */
export function compileGlob(pattern: string): Glob {
  if (pattern.length === 0) throw new InvalidGlobError('an empty pattern matches nothing');
  const anchored = pattern.includes('/');
  const body = anchored ? pattern.replace(/^\/+/, '') : pattern;
  const regexp = new RegExp(`^${toRegExpSource(body)}$`, 'u');
  return {
    pattern,
    matches(path) {
      const relative = path.replace(/^\/+/, '');
      if (anchored) return regexp.test(relative);
      const slash = relative.lastIndexOf('/');
      return regexp.test(slash < 0 ? relative : relative.slice(slash + 1));
    },
  };
}

import { execFileSync } from 'node:child_process';

/** Attribute name → value bytes in hex, in the order the file system lists them. */
export type XattrMap = Record<string, string>;

const READ = `
import json, os, sys
json.dump({p: {n: os.getxattr(p, n, follow_symlinks=False).hex()
               for n in os.listxattr(p, follow_symlinks=False)}
           for p in json.load(sys.stdin)}, sys.stdout)
`;

const WRITE = `
import json, os, sys
for p, attributes in json.load(sys.stdin).items():
    for n, v in attributes.items():
        os.setxattr(p, n, bytes.fromhex(v), follow_symlinks=False)
`;

/**
 * The extended attributes of each path (a symlink's own), read by python3's os.listxattr and
 * os.getxattr: a reader independent of volback's addon.
 */
export function readXattrs(paths: readonly string[]): Record<string, XattrMap> {
  return JSON.parse(
    execFileSync('python3', ['-c', READ], { input: JSON.stringify(paths) }).toString(),
  ) as Record<string, XattrMap>;
}

/** Sets extended attributes with python3's os.setxattr (path → name → value in hex). */
export function writeXattrs(attributes: Record<string, XattrMap>): void {
  execFileSync('python3', ['-c', WRITE], { input: JSON.stringify(attributes) });
}

import { extract } from 'tar-stream';

/** The entries of a tar archive: a file's content as text, any other entry as `<type>`. */
export async function untar(bytes: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files.set(
          header.name,
          header.type === 'file' ? Buffer.concat(chunks).toString() : `<${header.type}>`,
        );
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await done;
  return files;
}

// nats.js assembles a message that spans several socket reads in a buffer that starts with the
// first read's remainder and doubles as further reads come: a 16 MiB `load-blobs` reply or a
// 2 MiB `store-blobs` request is copied about twice on the way in, and may then sit in a buffer
// of twice its size until it is collected. nats.go sizes that buffer once from the size the MSG
// line announces; this gives nats.js's parser the same behaviour. It wraps the parser's public
// `parse` (exported by `@nats-io/nats-core/internal`) and changes nothing of what is parsed: after
// a read that leaves a message incomplete, the bytes it has so far move into a buffer of the
// message's size, once, and later reads fill it without growing it.
import { DenoBuffer, Parser, State } from '@nats-io/nats-core/internal';

const installed = Symbol.for('volback.presizedMessages');

/** Makes nats.js's parser size a split message's buffer once (idempotent; once per thread). */
export function presizeSplitMessages(): void {
  const prototype = Parser.prototype as Parser & { [installed]?: true };
  if (prototype[installed]) return;
  const parse = prototype.parse;
  prototype.parse = function (this: Parser, buf: Uint8Array): void {
    parse.call(this, buf);
    const partial = this.msgBuf;
    if (this.state !== State.MSG_PAYLOAD || !partial || partial.capacity >= this.ma.size) return;
    const sized = new DenoBuffer(new ArrayBuffer(this.ma.size));
    sized.reset();
    sized.write(partial.bytes({ copy: false }));
    this.msgBuf = sized;
  };
  prototype[installed] = true;
}

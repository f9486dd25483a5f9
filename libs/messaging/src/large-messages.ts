// Two copies nats.js makes of every large message, and nats.go does not. Both changes wrap public
// methods of classes `@nats-io/nats-core/internal` exports and change no byte on the wire.
//
// - In: a message that spans several socket reads is assembled in a buffer that starts with the
//   first read's remainder and doubles as further reads come, so a 16 MiB `load-blobs` reply or a
//   2 MiB `store-blobs` request was copied about twice and could sit in a buffer of twice its size.
//   Here, after a read that leaves a message incomplete, the bytes so far move once into a buffer of
//   the size its MSG line announced, which later reads fill without growing it (nats.go's way).
// - Out: a command waits in a list of buffers that the next flush joins into one new buffer for
//   the socket. A command of 64 KiB or more now goes to the socket at once in its parts, in order,
//   after whatever was pending (Node writes them together); smaller ones still wait and are joined,
//   one write for many small commands. The socket writes such a payload from the caller's buffer,
//   not from a copy: it must stay as it is until the request is answered (the data path frees a
//   blob handed over only then, and never after a failure).
import { DenoBuffer, Parser, ProtocolHandler, State } from '@nats-io/nats-core/internal';

const installed = Symbol.for('volback.largeMessages');
/** From this many bytes of payload, a command goes to the socket in its parts instead of joined. */
const UNJOINED_WRITE_BYTES = 64 * 1024;

type Marked<T> = T & { [installed]?: true };

function presizeSplitMessages(): void {
  const prototype = Parser.prototype as Marked<Parser>;
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

const encoder = new TextEncoder();

function writeLargeCommandsUnjoined(): void {
  const prototype = ProtocolHandler.prototype as Marked<ProtocolHandler>;
  if (prototype[installed]) return;
  const sendCommand = prototype.sendCommand;
  prototype.sendCommand = function (
    this: ProtocolHandler,
    cmd: string | Uint8Array,
    ...payloads: Uint8Array[]
  ) {
    const bytes = payloads.reduce((sum, payload) => sum + payload.length, 0);
    if (bytes < UNJOINED_WRITE_BYTES || !this.infoReceived || !this.connected) {
      sendCommand.call(this, cmd, ...payloads);
      return;
    }
    // What is pending goes first, as one write; then this command's parts, each as it is.
    if (this.outbound.size()) this.transport.send(this.outbound.drain());
    this.transport.send(typeof cmd === 'string' ? encoder.encode(cmd) : cmd);
    for (const payload of payloads) this.transport.send(payload);
  };
  prototype[installed] = true;
}

/** Installs both changes in this thread's nats.js (idempotent). */
export function avoidLargeMessageCopies(): void {
  presizeSplitMessages();
  writeLargeCommandsUnjoined();
}

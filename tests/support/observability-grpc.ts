/**
 * Raw frames on the controller's CLI stream, for driving the error counters a well-behaved
 * CLI never touches: an undecodable frame (malformed_frames_total{peer="cli"}) and a command
 * of a type the controller does not know (unknown_commands_total{peer="cli"}).
 * The frames are encoded by hand so that this does not depend on the generated code.
 */
import * as grpc from '@grpc/grpc-js';

const CLI_STREAM_PATH = '/protobuf.CliCmdStream/CliCommandStream';

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A length-delimited protobuf field (wire type 2). */
function field(no: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([...varint((no << 3) | 2), ...varint(bytes.length)]), bytes]);
}

/** StreamFromCli { stream_id = 1, cli_uuid = 2, command = 4 (Any { type_url = 1 }) }. */
export function unknownCommandFrame(streamId: string, cliUuid: string, typeUrl: string): Buffer {
  const any = field(1, Buffer.from(typeUrl));
  return Buffer.concat([
    field(1, Buffer.from(streamId)),
    field(2, Buffer.from(cliUuid)),
    field(4, any),
  ]);
}

/** Bytes that are not a protobuf message (a truncated varint tag). */
export const UNDECODABLE_FRAME = Buffer.from([0xff, 0xff, 0xff]);

/**
 * Opens a CLI stream, writes the frames, waits (bounded) for `expectReplies` replies or
 * the timeout, then closes the stream. Resolves with the number of replies seen.
 */
export async function sendRawCliFrames(
  addr: string,
  frames: Buffer[],
  { expectReplies = 0, timeoutMs = 3_000 }: { expectReplies?: number; timeoutMs?: number } = {},
): Promise<number> {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  const identity = (b: Buffer) => b;
  const call = client.makeBidiStreamRequest(CLI_STREAM_PATH, identity, identity);
  let replies = 0;
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      call.on('data', () => {
        replies += 1;
        if (replies >= expectReplies) done();
      });
      call.on('error', done);
      call.on('end', done);
      for (const f of frames) call.write(f);
      if (expectReplies === 0) setTimeout(done, Math.min(500, timeoutMs));
    });
  } finally {
    call.cancel();
    client.close();
  }
  return replies;
}

import { mkdtempSync } from 'node:fs';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { loadSync } from '@grpc/proto-loader';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../shared/config';
import { loadControllerConfig } from './config';
import { REFLECTED_PROTO_FILES, addReflection, linkDependencies, protoDir } from './reflection';

describe('CONTROLLER_REFLECTION', () => {
  test('on by default, off when asked', () => {
    expect(loadControllerConfig({}).reflection).toBe(true);
    expect(loadControllerConfig({ CONTROLLER_REFLECTION: 'on' }).reflection).toBe(true);
    expect(loadControllerConfig({ CONTROLLER_REFLECTION: 'off' }).reflection).toBe(false);
  });

  test('anything else is a configuration error naming the variable', () => {
    for (const bad of ['true', 'OFF', '0']) {
      expect(() => loadControllerConfig({ CONTROLLER_REFLECTION: bad })).toThrow(ConfigError);
      expect(() => loadControllerConfig({ CONTROLLER_REFLECTION: bad })).toThrow(
        /CONTROLLER_REFLECTION/,
      );
    }
  });
});

describe('addReflection', () => {
  test('finds proto/ from the sources and registers both reflection versions', () => {
    expect(protoDir()).toBe(path.resolve(__dirname, '..', '..', 'proto'));
    const names: string[] = [];
    addReflection({
      addService: (def) => {
        names.push(...Object.values(def).map((m) => m.path));
      },
    });
    expect(names).toEqual(
      expect.arrayContaining([
        '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
      ]),
    );
  });

  test('without the .proto files it fails, naming the file and the way out', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'no-proto-'));
    expect(() => addReflection({ addService: () => undefined }, empty)).toThrow(
      /currency_nodes\.proto.*CONTROLLER_REFLECTION=off/,
    );
  });
});

describe('linkDependencies', () => {
  // What grpcurl's descriptor validation needs and proto-loader leaves out.
  const definition = linkDependencies(
    loadSync([...REFLECTED_PROTO_FILES], { includeDirs: [protoDir()], keepCase: true }),
  );
  const files = (
    definition['protobuf.StreamFromNode'] as unknown as { fileDescriptorProtos: Buffer[] }
  ).fileDescriptorProtos.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  const ours = files.find((f) => f.package === 'protobuf')!;
  const wkt = files.find((f) => f.package === 'google.protobuf')!;
  const message = (name: string) => ours.messageType.find((m) => m.name === name)!;

  test('a file lists the files of the types it uses (Any, Timestamp)', () => {
    expect(ours.dependency).toEqual([wkt.name]);
    expect(wkt.dependency).toEqual([]);
  });

  test('map entries are named as protoc names them', () => {
    const m = message('StreamFromNode');
    expect(m.nestedType.map((n) => n.name)).toEqual(['TraceContextEntry']);
    expect(m.field.find((f) => f.name === 'trace_context')!.typeName).toBe(
      '.protobuf.StreamFromNode.TraceContextEntry',
    );
  });

  test('`optional` fields are proto3 optional again, other fields untouched', () => {
    const m = message('StreamFromNode');
    const optional = (name: string) => m.field.find((f) => f.name === name)!.proto3Optional;
    expect(optional('from_uuid')).toBe(true);
    expect(optional('response')).toBe(true);
    expect(optional('node_uuid')).toBe(false);
  });
});

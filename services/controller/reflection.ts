/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), so that grpcurl, grpcui and
 * Postman can list and call the controller's services without the .proto files
 * (docs/interop.md). CONTROLLER_REFLECTION=off leaves it out.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { create, fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import {
  type DescriptorProto,
  FieldDescriptorProtoSchema,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import type * as grpc from '@grpc/grpc-js';
import { type PackageDefinition, loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

/** The .proto files the controller serves, relative to the proto/ directory. */
export const REFLECTED_PROTO_FILES = [
  'protobuf/currency_nodes.proto',
  'grpc/health/v1/health.proto',
] as const;

/**
 * proto/ at the repository root (or /app/proto in the image): the nearest one above this
 * file, which is services/controller under ts-jest and dist/services/controller when built.
 */
export function protoDir(from = __dirname): string {
  let dir = from;
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, REFLECTED_PROTO_FILES[0]))) return candidate;
    dir = path.dirname(dir);
  }
  return path.resolve(from, '..', '..', 'proto');
}

/** Registers the reflection service on `server`; throws naming the file when proto/ is incomplete. */
export function addReflection(server: Pick<grpc.Server, 'addService'>, dir = protoDir()): void {
  for (const file of REFLECTED_PROTO_FILES) {
    const full = path.join(dir, file);
    if (!existsSync(full))
      throw new Error(`server reflection needs ${full} (CONTROLLER_REFLECTION=off to go without)`);
  }
  // keepCase: reflection must show the .proto's own field names (node_uuid), not camelCase.
  const definition = loadSync([...REFLECTED_PROTO_FILES], { includeDirs: [dir], keepCase: true });
  new ReflectionService(linkDependencies(definition)).addToServer(server);
}

type WithFiles = { fileDescriptorProtos: Buffer[] };
const hasFiles = (v: unknown): v is WithFiles =>
  typeof v === 'object' && v !== null && Array.isArray((v as WithFiles).fileDescriptorProtos);

/**
 * proto-loader's file descriptors (one per package) list no `dependency`, so a client that
 * builds them (grpcurl: "cannot resolve type *.google.protobuf.Any") cannot resolve a type
 * from another file (grpc/grpc-node issues 2958, 3034). Fill it in from the type references,
 * and give map entries the names protoc gives them (see nameMapEntries).
 */
export function linkDependencies(definition: PackageDefinition): PackageDefinition {
  const files = new Map<string, FileDescriptorProto>();
  for (const v of Object.values(definition)) {
    if (!hasFiles(v)) continue;
    for (const bin of v.fileDescriptorProtos) {
      const f = fromBinary(FileDescriptorProtoSchema, bin);
      if (!files.has(f.name)) files.set(f.name, f);
    }
  }
  const owner = new Map<string, string>(); // ".pkg.Type" -> file name
  // file name -> [type name as written (protobufjs writes them relative), scope it is in]
  const refs = new Map<string, [string, string][]>();
  const visit = (file: string, scope: string, messages: DescriptorProto[]) => {
    for (const m of messages) {
      nameMapEntries(m, `${scope}.${m.name}`);
      owner.set(`${scope}.${m.name}`, file);
      for (const e of m.enumType) owner.set(`${scope}.${m.name}.${e.name}`, file);
      for (const field of m.field)
        if (field.typeName) refs.get(file)!.push([field.typeName, `${scope}.${m.name}`]);
      visit(file, `${scope}.${m.name}`, m.nestedType);
    }
  };
  for (const f of files.values()) {
    const scope = f.package ? `.${f.package}` : '';
    refs.set(f.name, []);
    for (const e of f.enumType) owner.set(`${scope}.${e.name}`, f.name);
    visit(f.name, scope, f.messageType);
    for (const s of f.service)
      for (const m of s.method) refs.get(f.name)!.push([m.inputType, scope], [m.outputType, scope]);
  }
  const encoded = new Map<string, Buffer>();
  for (const f of files.values()) {
    const deps = new Set(refs.get(f.name)!.map(([t, scope]) => resolve(owner, t, scope)));
    deps.delete(f.name);
    deps.delete(undefined);
    const linked = create(FileDescriptorProtoSchema, { ...f, dependency: [...deps] as string[] });
    encoded.set(f.name, Buffer.from(toBinary(FileDescriptorProtoSchema, linked)));
  }
  const out: PackageDefinition = {};
  for (const [name, v] of Object.entries(definition)) {
    out[name] = hasFiles(v)
      ? {
          ...v,
          fileDescriptorProtos: v.fileDescriptorProtos.map(
            (bin) => encoded.get(fromBinary(FileDescriptorProtoSchema, bin).name) ?? bin,
          ),
        }
      : v;
  }
  return out;
}

/** The file declaring `typeName` as protobuf resolves it from `scope`: innermost scope first. */
function resolve(owner: Map<string, string>, typeName: string, scope: string): string | undefined {
  if (typeName.startsWith('.')) return owner.get(typeName);
  for (let s = scope; ; s = s.slice(0, Math.max(0, s.lastIndexOf('.')))) {
    const found = owner.get(`${s}.${typeName}`);
    if (found !== undefined || s === '') return found;
  }
}

/**
 * protobufjs names the entry type of `map<..> trace_context` "Trace_context"; protoc, and
 * the descriptor validation of grpc-go's and grpcurl's runtime, want "TraceContextEntry".
 */
function nameMapEntries(m: DescriptorProto, fullName: string): void {
  for (const entry of m.nestedType) {
    if (!entry.options?.mapEntry) continue;
    const field = m.field.find(
      (f) => f.typeName === entry.name || f.typeName === `${fullName}.${entry.name}`,
    );
    if (!field) continue;
    const camel = field.name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    entry.name = `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
    field.typeName = `${fullName}.${entry.name}`;
  }
  // Likewise `optional x` is written as a plain oneof `_x`: mark it proto3 optional again.
  const inOneof = m.field.filter((f) => isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex));
  for (const field of inOneof) {
    const members = inOneof.filter((f) => f.oneofIndex === field.oneofIndex).length;
    if (m.oneofDecl[field.oneofIndex]?.name === `_${field.name}` && members === 1)
      field.proto3Optional = true;
  }
}

/** A loopback OTLP/HTTP receiver (JSON encoding) that keeps every span it is sent. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: Record<string, unknown> }[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: { key: string; value: Record<string, unknown> }[];
      }[];
    }[];
  }[];
}

const attrValue = (v: Record<string, unknown>) => Object.values(v)[0];

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<OtlpReceiver> {
    let self: OtlpReceiver | undefined = undefined;
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        if (req.url === '/v1/traces') self!.ingest(JSON.parse(body) as OtlpJson);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new OtlpReceiver(server);
    return self;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private ingest(doc: OtlpJson): void {
    for (const rs of doc.resourceSpans ?? []) {
      const service = String(
        attrValue(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value ?? {}) ??
          '',
      );
      for (const ss of rs.scopeSpans ?? []) {
        for (const sp of ss.spans ?? []) {
          this.spans.push({
            service,
            scope: ss.scope?.name ?? '',
            traceId: sp.traceId,
            spanId: sp.spanId,
            parentSpanId: sp.parentSpanId ?? '',
            name: sp.name,
            kind: sp.kind,
            attributes: Object.fromEntries(
              (sp.attributes ?? []).map((a) => [a.key, attrValue(a.value)]),
            ),
          });
        }
      }
    }
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server.closeAllConnections();
      this.server.close(() => r());
    });
  }
}

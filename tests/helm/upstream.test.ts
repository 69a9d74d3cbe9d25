/**
 * Where a node group's prices come from (`nodeGroups[].upstream` merged over
 * `node.upstream`): the NODE_UPSTREAM_* variables and the file mounts of the headers Secret
 * and the CA, as rendered and as the node's own config loader reads them; a group without
 * an upstream renders exactly as before; the schema's and the chart's refusals.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadUpstreamConfig } from '../../services/node/upstream/config';
import { CHART, type K8sObject, byKind, one, render, renderRaw } from './support';

jest.setTimeout(60_000);

const deployment = (objs: K8sObject[], group: string): K8sObject =>
  one(objs, 'Deployment', `cn-currency-nodes-node-${group}`);
const podSpec = (d: K8sObject): K8sObject => d.spec.template.spec;
const container = (d: K8sObject): K8sObject => podSpec(d).containers[0];

/** The container's NODE_UPSTREAM* variables, name -> value, in the order rendered. */
function upstreamEnv(c: K8sObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of (c.env ?? []) as K8sObject[]) {
    if (!e.name.startsWith('NODE_UPSTREAM')) continue;
    expect(e.valueFrom).toBeUndefined();
    out[e.name] = e.value;
  }
  return out;
}

/** The pod's volumes whose name starts with "upstream", as written. */
function upstreamVolumes(d: K8sObject): K8sObject[] {
  return ((podSpec(d).volumes ?? []) as K8sObject[]).filter((v) => v.name.startsWith('upstream'));
}
function upstreamMounts(c: K8sObject): K8sObject[] {
  return ((c.volumeMounts ?? []) as K8sObject[]).filter((m) => m.name.startsWith('upstream'));
}

const PLAIN = { name: 'plain', replicas: 1, pairs: ['USD_JPY'] };

const HTTP = {
  name: 'fx',
  replicas: 2,
  pairs: ['EUR_USD', 'USD_HKD'],
  upstream: {
    kind: 'http',
    url: 'https://api.frankfurter.dev/v2/rate/{base}/{quote}?providers=ECB',
    symbol: '{base}-{quote}',
    pricePath: 'rate',
    timePath: 'date',
    timeoutMs: 5000,
    maxRps: 0.5,
    failAfterMs: 25000,
    maxAgeMs: 518400000,
    headersSecret: { name: 'fx-upstream-headers', key: 'api-key-headers' },
    caConfigMap: { name: 'corporate-ca', key: 'ca.pem' },
  },
};

const WEBSOCKET = {
  name: 'crypto',
  replicas: 1,
  pairs: ['ETH_USDT', 'BTC_USDT'],
  upstream: {
    kind: 'websocket',
    url: 'wss://stream.binance.com:9443/ws',
    symbols: { ETH_USDT: 'ethusdt', BTC_USDT: 'btcusdt' },
    subscribe: '{"method":"SUBSCRIBE","params":["{symbol}@ticker"],"id":1}',
    unsubscribe: '{"method":"UNSUBSCRIBE","params":["{symbol}@ticker"],"id":2}',
    symbolPath: 's',
    pricePath: 'c',
    timePath: 'E',
    headersSecret: { name: 'crypto-upstream', key: 'headers' },
    caSecret: { name: 'corporate-ca', key: 'ca.crt' },
  },
};

describe('an http group and a websocket group', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({ values: { nodeGroups: [HTTP, WEBSOCKET, PLAIN] } });
  });

  test('http: exactly the variables that are set, in the order of config.ts', () => {
    const e = upstreamEnv(container(deployment(objs, 'fx')));
    expect(Object.entries(e)).toEqual([
      ['NODE_UPSTREAM', 'http'],
      ['NODE_UPSTREAM_URL', 'https://api.frankfurter.dev/v2/rate/{base}/{quote}?providers=ECB'],
      ['NODE_UPSTREAM_SYMBOL', '{base}-{quote}'],
      ['NODE_UPSTREAM_PRICE_PATH', 'rate'],
      ['NODE_UPSTREAM_TIME_PATH', 'date'],
      ['NODE_UPSTREAM_HEADERS_FILE', '/etc/currency-nodes/upstream-headers/headers'],
      ['NODE_UPSTREAM_CA_FILE', '/etc/currency-nodes/upstream-ca/ca.crt'],
      ['NODE_UPSTREAM_TIMEOUT_MS', '5000'],
      ['NODE_UPSTREAM_MAX_RPS', '0.5'],
      ['NODE_UPSTREAM_FAIL_AFTER_MS', '25000'],
      ['NODE_UPSTREAM_MAX_AGE_MS', '518400000'],
    ]);
  });

  test('websocket: symbols as PAIR=SYMBOL sorted by pair, subscribe messages as written', () => {
    const e = upstreamEnv(container(deployment(objs, 'crypto')));
    expect(e).toEqual({
      NODE_UPSTREAM: 'websocket',
      NODE_UPSTREAM_URL: 'wss://stream.binance.com:9443/ws',
      NODE_UPSTREAM_SYMBOLS: 'BTC_USDT=btcusdt,ETH_USDT=ethusdt',
      NODE_UPSTREAM_PRICE_PATH: 'c',
      NODE_UPSTREAM_TIME_PATH: 'E',
      NODE_UPSTREAM_SYMBOL_PATH: 's',
      NODE_UPSTREAM_SUBSCRIBE: WEBSOCKET.upstream.subscribe,
      NODE_UPSTREAM_UNSUBSCRIBE: WEBSOCKET.upstream.unsubscribe,
      NODE_UPSTREAM_HEADERS_FILE: '/etc/currency-nodes/upstream-headers/headers',
      NODE_UPSTREAM_CA_FILE: '/etc/currency-nodes/upstream-ca/ca.crt',
    });
  });

  test('the headers Secret and the CA ConfigMap are directory mounts of one key each, read-only, 0440', () => {
    const d = deployment(objs, 'fx');
    expect(upstreamVolumes(d)).toEqual([
      {
        name: 'upstream-headers',
        secret: {
          secretName: 'fx-upstream-headers',
          defaultMode: 0o440,
          items: [{ key: 'api-key-headers', path: 'headers' }],
        },
      },
      {
        name: 'upstream-ca',
        configMap: {
          name: 'corporate-ca',
          defaultMode: 0o440,
          items: [{ key: 'ca.pem', path: 'ca.crt' }],
        },
      },
    ]);
    // A directory, never subPath: the kubelet swaps the directory's files when the Secret
    // changes, and the node re-reads the headers file when it does.
    expect(upstreamMounts(container(d))).toEqual([
      {
        name: 'upstream-headers',
        mountPath: '/etc/currency-nodes/upstream-headers',
        readOnly: true,
      },
      { name: 'upstream-ca', mountPath: '/etc/currency-nodes/upstream-ca', readOnly: true },
    ]);
  });

  test('a CA from a Secret is mounted the same way', () => {
    const d = deployment(objs, 'crypto');
    expect(upstreamVolumes(d)).toEqual([
      {
        name: 'upstream-headers',
        secret: {
          secretName: 'crypto-upstream',
          defaultMode: 0o440,
          items: [{ key: 'headers', path: 'headers' }],
        },
      },
      {
        name: 'upstream-ca',
        secret: {
          secretName: 'corporate-ca',
          defaultMode: 0o440,
          items: [{ key: 'ca.crt', path: 'ca.crt' }],
        },
      },
    ]);
    expect(upstreamMounts(container(d)).map((m) => m.mountPath)).toEqual([
      '/etc/currency-nodes/upstream-headers',
      '/etc/currency-nodes/upstream-ca',
    ]);
  });

  test('the headers never reach an env var: no secretKeyRef, no envFrom, no subPath anywhere', () => {
    const pods = [...byKind(objs, 'Deployment'), ...byKind(objs, 'Pod')];
    expect(pods.length).toBeGreaterThan(4);
    for (const o of pods) {
      const spec = o.kind === 'Pod' ? o.spec : podSpec(o);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers] as K8sObject[]) {
        expect(c.envFrom).toBeUndefined();
        for (const e of (c.env ?? []) as K8sObject[]) {
          expect({ name: e.name, secretKeyRef: e.valueFrom?.secretKeyRef }).toEqual({
            name: e.name,
            secretKeyRef: undefined,
          });
          expect(String(e.value ?? '')).not.toMatch(/fx-upstream-headers|crypto-upstream/);
        }
        for (const m of (c.volumeMounts ?? []) as K8sObject[]) expect(m.subPath).toBeUndefined();
      }
    }
  });

  test('the group without an upstream in the same release renders as it does alone', () => {
    const alone = deployment(render({ values: { nodeGroups: [PLAIN] } }), 'plain');
    expect(deployment(objs, 'plain')).toEqual(alone);
  });
});

describe('a group without an upstream renders as before', () => {
  let before: K8sObject;
  beforeAll(() => {
    before = deployment(render({ values: { nodeGroups: [PLAIN] } }), 'plain');
  });

  test('the default values set no NODE_UPSTREAM variable and mount nothing more', () => {
    for (const d of byKind(render(), 'Deployment')) {
      for (const c of podSpec(d).containers as K8sObject[]) expect(upstreamEnv(c)).toEqual({});
      expect(upstreamVolumes(d)).toEqual([]);
    }
  });

  test.each([
    ['upstream: {}', {}],
    ['kind: simulated', { kind: 'simulated' }],
    ['kind: "" (simulated)', { kind: '' }],
    [
      'kind: simulated with the settings that apply to every kind',
      { kind: 'simulated', timeoutMs: 100, maxRps: 3, failAfterMs: 100 },
    ],
  ])('%s: the same Deployment as without the key', (_what, upstream) => {
    const d = deployment(render({ values: { nodeGroups: [{ ...PLAIN, upstream }] } }), 'plain');
    expect(d).toEqual(before);
  });
});

describe('node.upstream: settings for every group', () => {
  const node = {
    upstream: {
      kind: 'http',
      url: 'https://prices.example.com/{symbol}',
      pricePath: 'price',
      timePath: 'time',
      symbols: { BTC_USD: 'XBTUSD' },
      timeoutMs: 4000,
      headersSecret: { name: 'shared-headers', key: 'headers' },
    },
  };
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({
      values: {
        node,
        nodeGroups: [
          { name: 'inherits', replicas: 1, pairs: ['BTC_USD'] },
          {
            name: 'overrides',
            replicas: 1,
            pairs: ['ETH_USD'],
            upstream: {
              url: 'https://other.example.com/{pair}',
              timePath: '',
              symbols: { ETH_USD: 'XETHUSD' },
              headersSecret: { name: 'own-headers', key: 'k' },
            },
          },
          { name: 'simulated', replicas: 1, pairs: ['USD_JPY'], upstream: { kind: 'simulated' } },
        ],
      },
    });
  });

  test('a group without its own upstream gets node.upstream', () => {
    const d = deployment(objs, 'inherits');
    expect(upstreamEnv(container(d))).toEqual({
      NODE_UPSTREAM: 'http',
      NODE_UPSTREAM_URL: 'https://prices.example.com/{symbol}',
      NODE_UPSTREAM_SYMBOLS: 'BTC_USD=XBTUSD',
      NODE_UPSTREAM_PRICE_PATH: 'price',
      NODE_UPSTREAM_TIME_PATH: 'time',
      NODE_UPSTREAM_HEADERS_FILE: '/etc/currency-nodes/upstream-headers/headers',
      NODE_UPSTREAM_TIMEOUT_MS: '4000',
    });
    expect(upstreamVolumes(d)[0].secret.secretName).toBe('shared-headers');
  });

  test("a group's keys win, maps merge, and an empty value drops an inherited one", () => {
    const d = deployment(objs, 'overrides');
    expect(upstreamEnv(container(d))).toEqual({
      NODE_UPSTREAM: 'http',
      NODE_UPSTREAM_URL: 'https://other.example.com/{pair}',
      NODE_UPSTREAM_SYMBOLS: 'BTC_USD=XBTUSD,ETH_USD=XETHUSD',
      NODE_UPSTREAM_PRICE_PATH: 'price',
      NODE_UPSTREAM_HEADERS_FILE: '/etc/currency-nodes/upstream-headers/headers',
      NODE_UPSTREAM_TIMEOUT_MS: '4000',
    });
    expect(upstreamVolumes(d)[0].secret).toEqual({
      secretName: 'own-headers',
      defaultMode: 0o440,
      items: [{ key: 'k', path: 'headers' }],
    });
  });

  test('kind: simulated in a group opts out: nothing inherited is rendered', () => {
    const d = deployment(objs, 'simulated');
    expect(upstreamEnv(container(d))).toEqual({});
    expect(upstreamVolumes(d)).toEqual([]);
  });
});

describe('values reach the node literally', () => {
  test('a $ is escaped, so Kubernetes does not expand $(VAR) in a value', () => {
    const objs = render({
      values: {
        nodeGroups: [
          {
            ...PLAIN,
            upstream: {
              kind: 'http',
              url: 'https://x.example.com/p?a=$(NODE_NAME)&b=$',
              pricePath: '$.price',
            },
          },
        ],
      },
    });
    const e = upstreamEnv(container(deployment(objs, 'plain')));
    expect(e.NODE_UPSTREAM_URL).toBe('https://x.example.com/p?a=$$(NODE_NAME)&b=$$');
    expect(e.NODE_UPSTREAM_PRICE_PATH).toBe('$$.price');
    expect(kubeletExpand(e.NODE_UPSTREAM_URL, { NODE_NAME: 'pod-1' })).toBe(
      'https://x.example.com/p?a=$(NODE_NAME)&b=$',
    );
  });

  test('numbers print as decimal digits, from a values file or from --set', () => {
    const base = { kind: 'http', url: 'https://x.example.com/{pair}', pricePath: 'p' };
    const fromFile = upstreamEnv(
      container(
        deployment(
          render({
            values: {
              nodeGroups: [
                {
                  ...PLAIN,
                  upstream: {
                    ...base,
                    failAfterMs: 2147483647,
                    maxAgeMs: 86400000,
                    maxRps: 100000,
                  },
                },
              ],
            },
          }),
          'plain',
        ),
      ),
    );
    expect(fromFile).toMatchObject({
      NODE_UPSTREAM_FAIL_AFTER_MS: '2147483647',
      NODE_UPSTREAM_MAX_AGE_MS: '86400000',
      NODE_UPSTREAM_MAX_RPS: '100000',
    });
    const g = 'nodeGroups[0]';
    const fromSet = upstreamEnv(
      container(
        deployment(
          render({
            set: [
              `${g}.name=plain`,
              `${g}.replicas=1`,
              `${g}.pairs[0]=USD_JPY`,
              `${g}.upstream.kind=http`,
              `${g}.upstream.url=https://x.example.com/{pair}`,
              `${g}.upstream.pricePath=p`,
              `${g}.upstream.timeoutMs=2500`,
              `${g}.upstream.maxRps=0.25`,
            ],
          }),
          'plain',
        ),
      ),
    );
    expect(fromSet).toMatchObject({
      NODE_UPSTREAM_TIMEOUT_MS: '2500',
      NODE_UPSTREAM_MAX_RPS: '0.25',
    });
  });
});

describe('ci/upstream-values.yaml: what the chart renders is what the node accepts', () => {
  const file = join(CHART, 'ci', 'upstream-values.yaml');
  let objs: K8sObject[];
  let dir: string;
  beforeAll(() => {
    objs = render({ valuesFiles: [file] });
    dir = mkdtempSync(join(tmpdir(), 'currency-nodes-upstream-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('it has one http group and one websocket group', () => {
    const values = parse(readFileSync(file, 'utf8')) as {
      nodeGroups: { upstream?: { kind?: string } }[];
    };
    expect(values.nodeGroups.map((g) => g.upstream?.kind).sort()).toEqual(['http', 'websocket']);
  });

  test.each([
    ['fx', 'http'],
    ['crypto', 'websocket'],
  ])(
    'group %s (%s): the environment, as the kubelet makes it, loads in services/node/upstream/config.ts',
    (group, kind) => {
      const d = deployment(objs, group);
      const env = kubeletEnv(d, join(dir, group));
      const pairs = env.NODE_CURRENCY_PAIRS!.split(',');
      const config = loadUpstreamConfig(env, pairs);
      const u = upstreamEnv(container(d));
      expect(config).toMatchObject({
        kind,
        url: u.NODE_UPSTREAM_URL,
        pricePath: u.NODE_UPSTREAM_PRICE_PATH,
        timePath: u.NODE_UPSTREAM_TIME_PATH,
        timeoutMs: 5000,
        failAfterMs: 25000,
      });
      if (kind === 'http') {
        expect(config.headersFile).toBe(join(dir, group, 'upstream-headers', 'headers'));
        expect(config.ca).toContain('-----BEGIN CERTIFICATE-----');
        expect(config.maxRps).toBe(1);
      } else {
        expect(config.symbols).toEqual({ BTC_USDT: 'btcusdt', ETH_USDT: 'ethusdt' });
        expect(config.symbolPath).toBe('s');
        expect(config.subscribe).toContain('{symbol}@ticker');
        expect(config.maxAgeMs).toBe(60000);
      }
    },
  );
});

describe('values.schema.json refuses bad upstream settings', () => {
  const group = (upstream: unknown) => ({ nodeGroups: [{ ...PLAIN, upstream }] });
  const rejects: [string, unknown, RegExp[]][] = [
    [
      'an unknown kind',
      group({ kind: 'grpc' }),
      [
        /\/nodeGroups\/0\/upstream\/kind/,
        /value must be one of '', 'simulated', 'http', 'websocket'/,
      ],
    ],
    [
      'an http group with a ws:// URL',
      group({ kind: 'http', url: 'wss://x.example.com', pricePath: 'p' }),
      [
        /\/nodeGroups\/0\/upstream\/url/,
        /'wss:\/\/x.example.com' does not match pattern '\^https\?:\/\/'/,
      ],
    ],
    [
      'a websocket group with an https:// URL',
      group({ kind: 'websocket', url: 'https://x.example.com', pricePath: 'p', symbolPath: 's' }),
      [/\/nodeGroups\/0\/upstream\/url/, /does not match pattern '\^wss\?:\/\/'/],
    ],
    [
      'a URL of another scheme',
      { node: { upstream: { url: 'ftp://x.example.com' } } },
      [/\/node\/upstream\/url/, /'ftp:\/\/x.example.com' does not match pattern/],
    ],
    [
      'a headers Secret without a key',
      group({ headersSecret: { name: 'h' } }),
      [/\/nodeGroups\/0\/upstream\/headersSecret/, /missing property 'key'/],
    ],
    [
      'a headers Secret without a name',
      group({ headersSecret: { key: 'headers' } }),
      [/\/nodeGroups\/0\/upstream\/headersSecret/, /missing property 'name'/],
    ],
    [
      'a CA ConfigMap with a name that is no object name',
      group({ caConfigMap: { name: 'Corporate CA', key: 'ca.crt' } }),
      [/\/nodeGroups\/0\/upstream\/caConfigMap\/name/, /does not match pattern/],
    ],
    [
      'zero and fractional milliseconds, a fail-after below 100 ms, zero requests per second',
      group({ timeoutMs: 0, maxAgeMs: 1.5, failAfterMs: 50, maxRps: 0 }),
      [
        /\/nodeGroups\/0\/upstream\/timeoutMs': minimum: got 0, want 1/,
        /\/nodeGroups\/0\/upstream\/maxAgeMs': got number, want integer/,
        /\/nodeGroups\/0\/upstream\/failAfterMs': minimum: got 50, want 100/,
        /\/nodeGroups\/0\/upstream\/maxRps': exclusiveMinimum: got 0, want 0/,
      ],
    ],
    [
      'a timeout beyond a timer',
      group({ timeoutMs: 2147483648 }),
      // The validator prints numbers this large as 2.147483648×10⁰⁹.
      [/\/nodeGroups\/0\/upstream\/timeoutMs': maximum: got 2(,|\.)147/],
    ],
    [
      'maxRps "0" given as a string (--set)',
      group({ maxRps: '0.0' }),
      [/\/nodeGroups\/0\/upstream\/maxRps/, /'0.0' does not match pattern/],
    ],
    [
      'a symbols key that is not a pair, a symbol with a comma',
      group({ symbols: { 'btc-usd': 'BTCUSD', ETH_USD: 'ETH,USD' } }),
      [
        /\/nodeGroups\/0\/upstream\/symbols': additional properties 'btc-usd' not allowed/,
        /\/nodeGroups\/0\/upstream\/symbols\/ETH_USD': 'ETH,USD' does not match pattern/,
      ],
    ],
    [
      'a path with an empty step',
      group({ pricePath: 'data..amount' }),
      [/\/nodeGroups\/0\/upstream\/pricePath/, /'data..amount' does not match pattern/],
    ],
    [
      'an unknown key (a typo)',
      group({ kind: 'http', prcePath: 'p' }),
      [/\/nodeGroups\/0\/upstream/, /additional properties 'prcePath' not allowed/],
    ],
  ];

  test.each(rejects)('%s', (_what, values, messages) => {
    const r = renderRaw({ values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
    for (const m of messages) expect(r.stderr).toMatch(m);
  });
});

describe("the chart's own upstream checks (on a group merged over node.upstream)", () => {
  const group = (upstream: unknown) => ({ nodeGroups: [{ ...PLAIN, upstream }] });
  const fails: [string, unknown, string][] = [
    [
      'a websocket group without symbolPath',
      group({ kind: 'websocket', url: 'wss://x.example.com/ws', pricePath: 'c' }),
      'nodeGroups[0] (plain): upstream.symbolPath: required for upstream.kind websocket',
    ],
    [
      'an http group without url',
      group({ kind: 'http', pricePath: 'rate' }),
      'nodeGroups[0] (plain): upstream.url: required for upstream.kind http',
    ],
    [
      'a websocket group without url',
      group({ kind: 'websocket', pricePath: 'c', symbolPath: 's' }),
      'nodeGroups[0] (plain): upstream.url: required for upstream.kind websocket',
    ],
    [
      'an http group without pricePath',
      group({ kind: 'http', url: 'https://x.example.com/{pair}' }),
      'nodeGroups[0] (plain): upstream.pricePath: required for upstream.kind http',
    ],
    [
      'a websocket group without pricePath',
      group({ kind: 'websocket', url: 'wss://x.example.com/ws', symbolPath: 's' }),
      'nodeGroups[0] (plain): upstream.pricePath: required for upstream.kind websocket',
    ],
    [
      'an http kind in the group with a ws:// URL from node.upstream',
      {
        node: { upstream: { url: 'wss://x.example.com/ws' } },
        nodeGroups: [{ ...PLAIN, upstream: { kind: 'http', pricePath: 'p' } }],
      },
      'nodeGroups[0] (plain): upstream.url: "wss://x.example.com/ws" must start with http:// or https:// for upstream.kind http',
    ],
    [
      'a websocket URL with a placeholder',
      group({
        kind: 'websocket',
        url: 'wss://x.example.com/{symbol}',
        pricePath: 'c',
        symbolPath: 's',
      }),
      'nodeGroups[0] (plain): upstream.url: a websocket upstream is one connection per node',
    ],
    [
      'a subscribe message for an http group',
      group({ kind: 'http', url: 'https://x.example.com/{pair}', pricePath: 'p', subscribe: 'x' }),
      'nodeGroups[0] (plain): upstream.subscribe: for upstream.kind websocket only',
    ],
    [
      'both caSecret and caConfigMap',
      group({
        kind: 'http',
        url: 'https://x.example.com/{pair}',
        pricePath: 'p',
        caSecret: { name: 'a', key: 'ca.crt' },
        caConfigMap: { name: 'b', key: 'ca.crt' },
      }),
      'nodeGroups[0] (plain): upstream: set caSecret or caConfigMap, not both',
    ],
    [
      'a real-upstream setting with no kind (a forgotten kind: http)',
      group({ url: 'https://x.example.com/{pair}', pricePath: 'p' }),
      'nodeGroups[0] (plain): upstream.url is set, but upstream.kind is simulated (the default)',
    ],
    [
      'a headers Secret under kind simulated',
      group({ kind: 'simulated', headersSecret: { name: 'h', key: 'headers' } }),
      'nodeGroups[0] (plain): upstream.headersSecret is set, but upstream.kind is simulated',
    ],
  ];

  test.each(fails)('%s', (_what, values, message) => {
    const r = renderRaw({ values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});

/**
 * Kubernetes' expansion of an env value (k8s.io/kubernetes third_party/forked/golang/expansion):
 * `$$` is `$`, `$(NAME)` is an earlier variable's value (kept as written when unknown).
 */
function kubeletExpand(input: string, vars: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    if (input[i] !== '$' || i + 1 === input.length) {
      out += input[i];
      continue;
    }
    const next = input[i + 1];
    const close = next === '(' ? input.indexOf(')', i + 2) : -1;
    if (next === '$') out += '$';
    else if (close !== -1) {
      const name = input.slice(i + 2, close);
      out += name in vars ? vars[name] : `$(${name})`;
      i = close - 1;
    } else out += '$' + next;
    i += 1;
  }
  return out;
}

/**
 * The node container's environment as the kubelet gives it: values expanded, downward-API
 * fields filled in, and each upstream volume written under `root` with the files its items
 * name (a headers file and a CA), the variables pointing there instead of the mount paths.
 */
function kubeletEnv(d: K8sObject, root: string): Record<string, string> {
  const c = container(d);
  const mounts: [string, string][] = [];
  for (const m of upstreamMounts(c)) {
    const v = upstreamVolumes(d).find((x) => x.name === m.name)!;
    const local = join(root, m.name);
    mkdirSync(local, { recursive: true });
    for (const item of (v.secret ?? v.configMap).items as K8sObject[]) {
      writeFileSync(
        join(local, item.path),
        m.name === 'upstream-ca'
          ? '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
          : 'X-API-Key: not-a-real-key\n',
      );
    }
    mounts.push([m.mountPath, local]);
  }
  const env: Record<string, string> = {};
  for (const e of c.env as K8sObject[]) {
    // Downward-API fields (the pod's name and UID) get a stand-in.
    let value = e.valueFrom ? `downward-api-${e.name}` : kubeletExpand(String(e.value), env);
    for (const [mountPath, local] of mounts)
      if (value.startsWith(mountPath + '/')) value = local + value.slice(mountPath.length);
    env[e.name] = value;
  }
  return env;
}

import { createServer } from 'node:net';
import { runCli } from './cli';
import { CliSession } from './session';
import { memoryIo } from '../../tests/support/memory-io';

const UUID = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';

/** A port on 127.0.0.1 that nothing listens on: bind to port 0, note it, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
  return address.port;
}

describe('usage errors exit 2 before any connection attempt', () => {
  let open: jest.SpyInstance;
  beforeEach(() => {
    open = jest
      .spyOn(CliSession.prototype, 'open')
      .mockRejectedValue(new Error('a usage error must not try to connect'));
  });
  afterEach(() => open.mockRestore());

  async function usage(argv: string[], env: Record<string, string> = {}) {
    const c = memoryIo();
    const code = await runCli(argv, c.io, env);
    expect(open).not.toHaveBeenCalled();
    expect(c.out()).toBe('');
    return { code, err: c.err() };
  }

  test.each([['abc'], ['0'], ['-1'], ['Infinity'], ['']])(
    'a --timeout of %p is refused naming --timeout',
    async (t) => {
      const r = await usage(['--timeout', t, 'controller', 'nodes']);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--timeout');
      expect(r.err).toContain('must be a number of seconds > 0');
    },
  );

  test.each([['1e3'], ['0x10'], ['+5'], [' 5'], ['5s'], ['.5'], ['5.'], ['1_000'], ['NaN']])(
    'a --timeout of %p (not plain decimal) is refused naming --timeout',
    async (t) => {
      const r = await usage(['--timeout', t, 'controller', 'nodes']);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--timeout: invalid value "${t}"`);
      expect(r.err).toContain('decimal');
    },
  );

  test.each([['3000000'], ['2147484'], ['99999999999999999999']])(
    'a --timeout of %p, beyond what a timer can wait, is refused naming --timeout',
    async (t) => {
      const r = await usage(['--timeout', t, 'controller', 'nodes']);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--timeout: invalid value "${t}"`);
      expect(r.err).toContain('at most 2147483');
    },
  );

  test('a --timeout below one millisecond is refused naming --timeout', async () => {
    const r = await usage(['--timeout', '0.0004', 'controller', 'nodes']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--timeout: invalid value "0.0004"');
    expect(r.err).toContain('at least 0.001');
  });

  test.each([
    ['nope', 'is not HOST:PORT'],
    ['localhost:70000', 'port 70000 is out of range'],
    ['localhost:0', 'port 0 is out of range'],
  ])('a --controller of %p is refused naming --controller: %s', async (addr, says) => {
    const r = await usage(['--controller', addr, 'controller', 'version']);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--controller: invalid value "${addr}"`);
    expect(r.err).toContain(says);
  });

  test('a bad CLI_CONTROLLER_ADDR is refused naming the variable', async () => {
    const r = await usage(['controller', 'nodes'], { CLI_CONTROLLER_ADDR: 'nowhere' });
    expect(r.code).toBe(2);
    expect(r.err).toContain('CLI_CONTROLLER_ADDR');
    expect(r.err).toContain('is not HOST:PORT');
  });

  // Anything else may be a name or a UUID prefix (resolved against the controller; tested
  // in tests/integration/cli-replies.test.ts).
  test.each(['status', 'shutdown'])(
    'node %s with a blank --node-uuid is refused naming it',
    async (cmd) => {
      const r = await usage(['node', cmd, '--node-uuid', ' ']);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--node-uuid: invalid value ""');
    },
  );

  test.each([
    ['--interval', 'x'],
    ['--interval', '1e2'],
    ['--interval', '3000000'],
  ])('controller nodes -w %s %p is refused naming --interval', async (flag, v) => {
    const r = await usage(['controller', 'nodes', '-w', flag, v]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--interval: invalid value "${v}"`);
  });

  test('completion for an unknown shell is refused naming it', async () => {
    const r = await usage(['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown shell "tcsh"');
  });

  test.each(['status', 'shutdown'])(
    'node %s with both --all and --node-uuid is refused',
    async (cmd) => {
      const r = await usage(['node', cmd, '--all', '--node-uuid', UUID]);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--all and --node-uuid cannot be used together');
    },
  );

  test.each(['status', 'shutdown'])(
    'node %s with neither --all nor --node-uuid is refused',
    async (cmd) => {
      const r = await usage(['node', cmd]);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--node-uuid');
      expect(r.err).toContain('--all');
    },
  );

  test.each([['usd-hkd'], ['USD_HKD,btc']])(
    'watch --pair %p is refused naming --pair',
    async (p) => {
      const r = await usage(['watch', '--pair', p]);
      expect(r.code).toBe(2);
      expect(r.err).toContain('--pair: invalid value');
      expect(r.err).toContain('BASE_QUOTE');
    },
  );

  test('controller kick with a non-UUID argument is refused', async () => {
    const r = await usage(['controller', 'kick', UUID, 'node-7']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('UUID: invalid value "node-7"');
  });

  test('controller kick without any UUID is refused', async () => {
    const r = await usage(['controller', 'kick']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('uuid');
  });

  test.each<[string[], string]>([
    [['bogus'], 'bogus'],
    [['controller', 'bogus'], 'bogus'],
    [['node', 'reboot', '--all'], 'reboot'],
  ])('an unknown subcommand %p is refused naming it', async (argv, name) => {
    const r = await usage(argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`unknown command '${name}'`);
  });

  test('an unknown option is refused naming it', async () => {
    const r = await usage(['--bogus', 'controller', 'nodes']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--bogus');
  });

  test('an option missing its value is refused naming it', async () => {
    const r = await usage(['node', 'status', '--node-uuid']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--node-uuid');
  });

  test('no arguments at all is a usage error that prints the usage on stderr', async () => {
    const r = await usage([]);
    expect(r.err).toContain('Usage: currency-cli');
    expect(r.code).toBe(2);
  });

  test.each([['controller'], ['node']])(
    'a command group %p without a command is a usage error',
    async (group) => {
      const r = await usage([group]);
      expect(r.err).toContain(`Usage: currency-cli ${group}`);
      expect(r.code).toBe(2);
    },
  );
});

describe('help and version', () => {
  let open: jest.SpyInstance;
  beforeEach(() => {
    open = jest.spyOn(CliSession.prototype, 'open').mockRejectedValue(new Error('no connecting'));
  });
  afterEach(() => open.mockRestore());

  test('--help prints the usage on stdout and exits 0 without connecting', async () => {
    const c = memoryIo();
    expect(await runCli(['--help'], c.io, {})).toBe(0);
    expect(c.out()).toContain('Usage: currency-cli');
    expect(c.out()).toContain('--timeout');
    expect(c.err()).toBe('');
    expect(open).not.toHaveBeenCalled();
  });

  test('help of a subcommand exits 0 and describes its flags', async () => {
    const c = memoryIo();
    expect(await runCli(['node', 'status', '--help'], c.io, {})).toBe(0);
    expect(c.out()).toContain('--node-uuid');
    expect(c.out()).toContain('--all');
    expect(open).not.toHaveBeenCalled();
  });

  test.each([
    ['controller', 'nodes'],
    ['controller', 'kick'],
    ['controller', 'version'],
    ['controller', 'streams'],
    ['controller', 'prices'],
    ['node', 'status'],
    ['node', 'shutdown'],
    ['watch'],
    ['completion'],
  ])('%s %s --help shows examples', async (...cmd) => {
    const c = memoryIo();
    expect(await runCli([...cmd, '--help'], c.io, {})).toBe(0);
    expect(c.out()).toContain('Examples:');
    expect(c.out()).toContain(`$ currency-cli `);
    expect(open).not.toHaveBeenCalled();
  });

  test('the top-level --help documents the exit codes and the colour rule', async () => {
    const c = memoryIo();
    expect(await runCli(['--help'], c.io, {})).toBe(0);
    expect(c.out()).toContain('3 controller unreachable');
    expect(c.out()).toContain('NO_COLOR');
    expect(c.out()).toMatch(/--timeout <seconds>.*fractions allowed/s);
  });

  test('--version prints a version and exits 0', async () => {
    const c = memoryIo();
    expect(await runCli(['--version'], c.io, {})).toBe(0);
    expect(c.out()).toMatch(/\d+\.\d+\.\d+/);
    expect(open).not.toHaveBeenCalled();
  });
});

describe('an unreachable controller', () => {
  test('exits 3 within the timeout and says it could not reach the controller', async () => {
    const port = await freePort();
    const c = memoryIo();
    const started = Date.now();
    const code = await runCli(
      ['--controller', `127.0.0.1:${port}`, '--timeout', '0.2', 'controller', 'version'],
      c.io,
      {},
    );
    expect(code).toBe(3);
    expect(c.err()).toContain(`could not reach the controller at 127.0.0.1:${port}`);
    expect(c.out()).toBe('');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test('the address comes from CLI_CONTROLLER_ADDR when --controller is not given', async () => {
    const port = await freePort();
    const c = memoryIo();
    const code = await runCli(['--timeout', '0.2', 'controller', 'nodes'], c.io, {
      CLI_CONTROLLER_ADDR: `127.0.0.1:${port}`,
    });
    expect(code).toBe(3);
    expect(c.err()).toContain(`127.0.0.1:${port}`);
  });
});

describe('TLS and token options are checked before any connection', () => {
  let open: jest.SpyInstance;
  beforeEach(() => {
    open = jest
      .spyOn(CliSession.prototype, 'open')
      .mockRejectedValue(new Error('a usage error must not try to connect'));
  });
  afterEach(() => open.mockRestore());

  async function usage(argv: string[], env: Record<string, string> = {}) {
    const c = memoryIo();
    const code = await runCli([...argv, 'controller', 'nodes'], c.io, env);
    expect(open).not.toHaveBeenCalled();
    return { code, err: c.err() };
  }

  test.each<[string, string[], Record<string, string>, string]>([
    ['a --tls-ca file that does not exist', ['--tls-ca', '/nonexistent/ca.pem'], {}, '--tls-ca'],
    [
      'a CLI_TLS_CA_FILE that does not exist',
      [],
      { CLI_TLS_CA_FILE: '/nonexistent/ca.pem' },
      'CLI_TLS_CA_FILE',
    ],
    [
      'the flag, not the variable, when both are given',
      ['--tls-ca', '/nonexistent/flag.pem'],
      { CLI_TLS_CA_FILE: '/nonexistent/env.pem' },
      '--tls-ca',
    ],
    [
      'a --tls-cert without --tls-key',
      ['--tls-ca', '/x/ca.pem', '--tls-cert', '/x/cli.pem'],
      {},
      '--tls-key',
    ],
    ['a client certificate without a CA', ['--tls-cert', '/x/cli.pem'], {}, '--tls-ca'],
    ['a CLI_TOKEN that is too short', [], { CLI_TOKEN: 'short' }, 'CLI_TOKEN'],
    ['a --token-file that does not exist', ['--token-file', '/nonexistent/t'], {}, '--token-file'],
    [
      'both CLI_TOKEN and CLI_TOKEN_FILE',
      [],
      { CLI_TOKEN: 'cli-secret-0123456789abcdef', CLI_TOKEN_FILE: '/x/t' },
      'CLI_TOKEN_FILE',
    ],
  ])('%s exits 2 naming %s', async (_what, argv, env, named) => {
    const r = await usage(argv, env);
    expect(r.code).toBe(2);
    expect(r.err).toContain(named);
  });
});

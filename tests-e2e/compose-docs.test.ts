/**
 * The compose commands the docs give, as Compose itself resolves them (`docker compose
 * config`: no container starts, no image is pulled or built):
 *
 * - every documented way to run the programs alone (`COMPOSE_PROFILES= ...`) leaves the
 *   observability services out and leaves no program exporting traces to the collector
 *   that is then missing;
 * - docs/compose-without-docker-hub.md's registry-mirror lines put the mirror in front of
 *   every image that is pulled, and of the base image the three builds start from.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMPOSE_DIR, ROOT, runOk } from './support/docker';

jest.setTimeout(60_000);

const read = (page: string) => readFileSync(join(ROOT, page), 'utf8');

function markdownPages(): string[] {
  const out = ['README.md'];
  const walk = (dir: string) => {
    for (const f of readdirSync(join(ROOT, dir))) {
      const p = `${dir}/${f}`;
      if (statSync(join(ROOT, p)).isDirectory()) walk(p);
      else if (f.endsWith('.md')) out.push(p);
    }
  };
  walk('docs');
  walk('deploy');
  return out;
}

interface Config {
  services: Record<
    string,
    {
      image?: string;
      environment?: Record<string, string>;
      build?: { args?: Record<string, string> };
    }
  >;
}

/** Runs `lines` in deploy/compose with bash, `docker compose up ...` made `config`. */
async function resolved(lines: string): Promise<Config> {
  const script = lines.replace(/docker compose up\b[^\n]*/g, 'docker compose config --format json');
  // The shell the reader types in sets none of the variables the lines are about.
  const env = { ...process.env };
  for (const k of Object.keys(env))
    if (k.startsWith('COMPOSE_') || k.startsWith('OTEL_') || k.endsWith('_IMAGE')) delete env[k];
  return JSON.parse(await runOk('bash', ['-euc', script], { cwd: COMPOSE_DIR, env })) as Config;
}

const OBSERVABILITY = ['prometheus', 'grafana', 'otel-collector', 'jaeger'];

describe('the programs alone, as the docs run them', () => {
  const commands: [string, string][] = [];
  for (const page of markdownPages())
    for (const [command] of read(page).matchAll(
      /COMPOSE_PROFILES= [^`\n]*docker compose up[^`\n]*/g,
    ))
      commands.push([page, command]);

  test('the docs give at least one', () => {
    expect(commands.length).toBeGreaterThan(0);
  });

  test.each(commands)(
    '%s: `%s` starts no observability service and exports no traces',
    async (_page, command) => {
      const config = await resolved(command);
      const services = Object.keys(config.services);
      expect(services).toEqual(expect.arrayContaining(['controller', 'node', 'cli']));
      expect(services.filter((s) => OBSERVABILITY.includes(s))).toEqual([]);
      for (const [name, s] of Object.entries(config.services))
        expect({ name, endpoint: s.environment?.OTEL_EXPORTER_OTLP_ENDPOINT ?? '' }).toEqual({
          name,
          endpoint: '',
        });
    },
  );
});

test("docs/compose-without-docker-hub.md: the mirror's lines name every image under the mirror", async () => {
  const page = read('docs/compose-without-docker-hub.md');
  const block = /```sh\n([\s\S]*?)```/.exec(page.slice(page.indexOf('## A.')))![1]!;
  const mirror = 'mirror-under-test/hub';
  const lines = block.replace(/^MIRROR=.*$/m, `MIRROR=${mirror}`);
  expect(lines).toContain(`MIRROR=${mirror}`);
  const config = await resolved(lines);
  const env = read('deploy/compose/.env');
  const official = (v: string) => new RegExp(`^${v}=(.+)$`, 'm').exec(env)![1]!;
  for (const [name, s] of Object.entries(config.services)) {
    if (s.build) {
      // Built here: its base comes from the mirror.
      expect({ name, base: s.build.args?.NODE_IMAGE }).toEqual({
        name,
        base: `${mirror}/${official('NODE_BASE_IMAGE')}`,
      });
    } else {
      expect({ name, image: s.image?.startsWith(`${mirror}/`) }).toEqual({ name, image: true });
    }
  }
  expect(Object.keys(config.services)).toEqual(expect.arrayContaining(OBSERVABILITY));
});

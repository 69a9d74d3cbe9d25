/**
 * completionScript (completion.ts): shell completion generated from commander's own
 * metadata, so it cannot drift from the CLI. Checked on a small program built here;
 * tests/integration/cli-human.test.ts runs the real program's script in bash.
 */
import { Command } from 'commander';
import { SHELLS, completionScript } from './completion';

function program(): Command {
  // No .version() here (one test adds it): commander adds its own -V/--version option.
  const p = new Command('currency-cli');
  p.option('--controller <addr>', 'controller address').option('--json', 'JSON output');
  const controller = p.command('controller').description('ask the controller');
  controller.command('nodes').description('list nodes').option('-w, --watch', 'poll');
  controller
    .command('kick')
    .description("kick a node (it's back soon)")
    .option('--interval [s]', 'optional value');
  p.command('node')
    .description('ask nodes')
    .command('status')
    .option('--node-uuid <uuid>', 'target');
  return p;
}

describe('bash', () => {
  const script = completionScript('bash', program());

  test('one case per command path, offering its subcommands, its flags and --help', () => {
    expect(script).toContain(
      `    '') words='controller node --controller --json --help --version' ;;`,
    );
    expect(script).toContain(`    'controller') words='nodes kick --help' ;;`);
    expect(script).toContain(`    'controller nodes') words='-w --watch --help' ;;`);
    expect(script).toContain(`    'node status') words='--node-uuid --help' ;;`);
  });

  test('--version is offered at the top level only', () => {
    expect(script.match(/--version/g)).toHaveLength(1);
    expect(script).toMatch(/ {4}''\) words='[^']*--version' ;;/);
  });

  test('a program with .version() (as currency-cli has) offers --version once, with -V', () => {
    const versioned = completionScript('bash', program().version('1.2.3'));
    const root = / {4}''\) words='([^']*)' ;;/.exec(versioned)![1]!.split(' ');
    expect(root.filter((w) => w === '--version')).toHaveLength(1);
    expect(root).toContain('-V');
    expect(new Set(root).size).toBe(root.length);
  });

  test('flags that take a value (required or optional) are skipped with their value when finding the path', () => {
    expect(script).toContain(
      'case " --controller --interval --node-uuid " in *" $prev "*) return 0 ;; esac',
    );
    expect(script).toContain(
      'case " --controller --interval --node-uuid " in *" $w "*) i=$((i + 1)); continue ;; esac',
    );
    expect(script).not.toMatch(/case " [^"]*--json/);
  });

  test('registers itself for currency-cli', () => {
    expect(script.startsWith('# currency-cli completion for bash')).toBe(true);
    expect(script.trimEnd().endsWith('complete -F _currency_cli currency-cli')).toBe(true);
  });
});

test('zsh: the bash function through bashcompinit', () => {
  const zsh = completionScript('zsh', program());
  const bash = completionScript('bash', program());
  expect(zsh.split('\n').slice(0, 3)).toEqual([
    '# currency-cli completion for zsh: add to ~/.zshrc: source <(currency-cli completion zsh)',
    'autoload -U +X compinit && compinit',
    'autoload -U +X bashcompinit && bashcompinit',
  ]);
  expect(zsh.endsWith(bash.split('\n').slice(1).join('\n'))).toBe(true);
});

describe('fish', () => {
  const fish = completionScript('fish', program());

  test('top-level subcommands complete only before any subcommand, with their descriptions', () => {
    expect(fish).toContain(
      "complete -c currency-cli -n '__fish_use_subcommand' -a 'controller' -d 'ask the controller'",
    );
  });

  test('a nested subcommand completes after its parent and not after a sibling was typed', () => {
    expect(fish).toContain(
      "complete -c currency-cli -n '__fish_seen_subcommand_from controller; and not __fish_seen_subcommand_from nodes kick' -a 'nodes' -d 'list nodes'",
    );
  });

  test('options: short and long names, -r when they take a value, scoped to their command', () => {
    expect(fish).toContain("complete -c currency-cli -l controller -r -d 'controller address'");
    expect(fish).toContain("complete -c currency-cli -l json -d 'JSON output'");
    expect(fish).toContain(
      "complete -c currency-cli -n '__fish_seen_subcommand_from nodes' -s w -l watch -d 'poll'",
    );
    expect(fish).toContain(
      "complete -c currency-cli -n '__fish_seen_subcommand_from kick' -l interval -r -d 'optional value'",
    );
  });

  test('single quotes in descriptions are escaped for the shell', () => {
    expect(fish).toContain(`-d 'kick a node (it'\\''s back soon)'`);
  });
});

test('every shell has a script', () => {
  for (const shell of SHELLS) expect(completionScript(shell, program()).length).toBeGreaterThan(0);
});

import type { Command, Option } from 'commander';

/** Shells `volback completion` writes a script for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
/** One of {@link SHELLS}. */
export type Shell = (typeof SHELLS)[number];

/** One command of the tree, by its path of names (`repo backup`). */
interface Node {
  path: string[];
  description: string;
  subcommands: string[];
  options: Option[];
}

/** Every command of the program, depth first, the root (path []) included. */
function walk(command: Command, path: string[] = []): Node[] {
  const subs = command.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
  return [
    {
      path,
      description: command.description(),
      subcommands: subs.map((c) => c.name()),
      options: [...command.options],
    },
    ...subs.flatMap((c) => walk(c, [...path, c.name()])),
  ];
}

const longs = (options: readonly Option[]) => options.flatMap((o) => (o.long ? [o.long] : []));
const quoteFish = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * A function body shared by bash and zsh: the words that may follow a command path. Global
 * options (the root's) are offered everywhere.
 */
function wordsFunction(nodes: readonly Node[], globals: readonly string[]): string {
  const cases = nodes.map((n) => {
    const words = [...n.subcommands, ...longs(n.options), ...(n.path.length ? globals : []), '--help'];
    return `    "${n.path.join(' ')}") echo "${[...new Set(words)].join(' ')}" ;;`;
  });
  return `_volback_words() {\n  case "$1" in\n${cases.join('\n')}\n  esac\n}`;
}

function bash(nodes: readonly Node[], globals: readonly string[]): string {
  return `# volback completion for bash: source <(volback completion bash)
${wordsFunction(nodes, globals)}
_volback() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ " $(_volback_words "$cmdpath") " == *" $w "* ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  COMPREPLY=($(compgen -W "$(_volback_words "$cmdpath")" -- "$cur"))
}
complete -o default -F _volback volback
`;
}

function zsh(nodes: readonly Node[], globals: readonly string[]): string {
  return `#compdef volback
# volback completion for zsh: source <(volback completion zsh)
${wordsFunction(nodes, globals)}
_volback() {
  local cmdpath="" w i
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    if [[ " $(_volback_words "$cmdpath") " == *" $w "* ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  compadd -- \${=$(_volback_words "$cmdpath")}
}
compdef _volback volback
`;
}

function fish(nodes: readonly Node[]): string {
  const lines = ['# volback completion for fish: volback completion fish | source', 'complete -c volback -f'];
  const condition = (path: readonly string[], subs: readonly string[]) => {
    if (path.length === 0) return '__fish_use_subcommand';
    const parts = path.map((p) => `__fish_seen_subcommand_from ${p}`);
    // A top-level command that `repo` also has (backup, restore…): not inside `repo`.
    if (path.length === 1 && path[0] !== 'repo') parts.push('not __fish_seen_subcommand_from repo');
    if (subs.length) parts.push(`not __fish_seen_subcommand_from ${subs.join(' ')}`);
    return parts.join('; and ');
  };
  for (const n of nodes) {
    const parent = nodes.find((p) => p.path.join(' ') === n.path.slice(0, -1).join(' ') && n.path.length > 0);
    if (parent) {
      lines.push(
        `complete -c volback -n ${quoteFish(condition(parent.path, parent.subcommands))} -a ${n.path.at(-1)} -d ${quoteFish(n.description)}`,
      );
    }
    for (const o of n.options) {
      if (!o.long) continue;
      const where = n.path.length === 0 ? '' : ` -n ${quoteFish(condition(n.path, []))}`;
      lines.push(
        `complete -c volback${where} -l ${o.long.replace(/^--/, '')}${o.short ? ` -s ${o.short.replace(/^-/, '')}` : ''}${o.required || o.optional ? ' -r' : ''} -d ${quoteFish(o.description)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script of `program` for `shell`. */
export function completionScript(program: Command, shell: Shell): string {
  const nodes = walk(program);
  const globals = longs(program.options);
  if (shell === 'bash') return bash(nodes, globals);
  if (shell === 'zsh') return zsh(nodes, globals);
  return fish(nodes);
}

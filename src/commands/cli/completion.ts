// `socketeer completion`: yargs' completion script (bash, or zsh when run from zsh), completing
// commands and options, and the service names of the running daemon where a command takes one.
import type { Argv } from 'yargs';

/** The commands whose first positional is a service name. */
const takesService = new Set(['status', 'stop', 'start', 'quiesce', 'drain', 'kill']);

/** How long a completion waits for the daemon before it offers no service names. */
const askTimeoutMs = 1000;

type Filter = (onCompleted?: (error: Error | null, found: string[] | undefined) => void) => unknown;

/** Adds the `completion` command and the completion function to the parser. */
export function withCompletion(y: Argv): Argv {
  return y.completion(
    'completion',
    'print a shell completion script for bash (zsh when run from zsh): source <(socketeer completion)',
    complete,
  );
}

/** yargs' defaults (commands, options), plus service names after a command that takes one. */
function complete(
  current: string,
  argv: { readonly _: readonly (string | number)[]; readonly control?: unknown },
  filter: Filter,
  done: (completions: string[]) => void,
): void {
  filter((error, defaults) => {
    const base = error === null ? (defaults ?? []) : [];
    // `socketeer stop b<TAB>`: ['socketeer', 'stop', 'b'], the word being completed last
    const words = argv._.map(String);
    if (words.length !== 3 || !takesService.has(words[1] ?? '') || current.startsWith('-'))
      return done(base);
    const control = typeof argv.control === 'string' ? argv.control : undefined;
    void serviceNames(control).then((names) =>
      done([...base, ...names.filter((name) => name.startsWith(current))]),
    );
  });
}

/**
 * Answers the completion script's `socketeer --get-yargs-completions WORDS...` (true) or does
 * nothing (false). yargs' own answer runs only a synchronous completion to the end before its
 * strict check, and the service names come from the daemon asynchronously.
 */
export async function answerCompletion(
  parser: Argv,
  argv: readonly string[],
  out: (text: string) => void,
): Promise<boolean> {
  // the script puts it first; anywhere else (`escape -- --get-yargs-completions`) it is a word
  if (argv[0] !== '--get-yargs-completions') return false;
  const completions = await parser.getCompletion(argv.slice(1));
  out(completions.map((c) => `${c}\n`).join(''));
  return true;
}

/** The running daemon's services, or none when it cannot be asked (a completion never fails). */
async function serviceNames(control: string | undefined): Promise<string[]> {
  try {
    const { askDaemon } = await import('../ask-daemon.js');
    const status = await askDaemon({ control }, { cmd: 'status' }, askTimeoutMs);
    return status.services.map((s) => s.name);
  } catch {
    return [];
  }
}

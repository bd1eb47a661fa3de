// What every command definition in this folder is made of. These modules are loaded at every
// start, so they stay light: a command's own module is imported when the command runs.
import type { ArgumentsCamelCase, Argv } from 'yargs';

/** What a command's run gets besides its arguments. */
export interface CommandIo {
  /** The command line as given (after the program name). */
  readonly argv: readonly string[];
  /** stdout. */
  readonly out: (text: string) => void;
  /** stderr. */
  readonly err: (text: string) => void;
}

/**
 * A subcommand as main adds it: the parser with the command on it. When the command line names
 * it, yargs hands `choose` its run, which main calls once the parse is over (so yargs and the
 * parser are garbage while the command runs: `serve` runs for the daemon's whole life).
 */
export type CommandDefinition = (
  yargs: Argv,
  io: CommandIo,
  choose: (run: CommandRun) => void,
) => Argv;

/** A chosen command, run after the parse; resolves with the exit code. */
export type CommandRun = () => Promise<number>;

export interface CommandSpec<A> {
  /** The command and its positionals, as yargs reads them: `stop <service>`. */
  readonly command: string;
  readonly describe: string;
  /** Its positionals and options. */
  readonly builder: (yargs: Argv) => Argv<A>;
  /** Runs it (importing its module now, not at start-up) and resolves with the exit code. */
  readonly run: (args: ArgumentsCamelCase<A>, io: CommandIo) => Promise<number>;
}

/** One subcommand from its yargs definition and its run. */
export function defineCommand<A>(spec: CommandSpec<A>): CommandDefinition {
  return (yargs, io, choose) =>
    yargs.command(spec.command, spec.describe, spec.builder, (args) =>
      choose(() => spec.run(args, io)),
    );
}

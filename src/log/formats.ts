// The choices of `serve --log-format`, apart from logger.ts so that the command line can offer
// them without loading winston (every command's definition is loaded at start).

export const logFormats = ['json', 'text'] as const;
export type LogFormat = (typeof logFormats)[number];

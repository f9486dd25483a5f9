// How the Docker Engine's API errors (through dockerode) read: the HTTP status and the engine's message.

/** The HTTP status the engine answered with, if the error came from it. */
export function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

/** The engine's own message when it gave one, else the error's. */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: string } }).json;
  return json?.message ?? (error as Error).message;
}

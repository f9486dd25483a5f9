import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { SCHEMA, SCHEMA_VERSION } from '../projection/schema.ts';

/** The read model's SQLite file: one connection, WAL, and the projection's checkpoint. */
export class CatalogDatabase {
  readonly db: DatabaseSync;
  readonly file: string;
  #readCheckpoint: StatementSync | undefined;

  private constructor(db: DatabaseSync, file: string) {
    this.db = db;
    this.file = file;
  }

  /**
   * Opens (or creates) the database. A database of another schema version, or `rebuild`, is
   * emptied: the caller then replays the event log into it. Returns whether it starts empty.
   */
  static open(
    file: string,
    options: { rebuild?: boolean } = {},
  ): { database: CatalogDatabase; emptied: boolean } {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    const database = new CatalogDatabase(db, file);
    const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    if (version === SCHEMA_VERSION && !options.rebuild) return { database, emptied: false };
    database.reset();
    return { database, emptied: true };
  }

  /** Drops every table and creates the current schema, checkpoint 0. */
  reset(): void {
    this.transaction(() => {
      const tables = this.db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .all() as Array<{ name: string }>;
      for (const { name } of tables) this.db.exec(`DROP TABLE "${name.replaceAll('"', '""')}"`);
      this.db.exec(SCHEMA);
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    });
  }

  /** The stream sequence of the last event applied. */
  checkpoint(): number {
    // Asked once per event: prepared once.
    this.#readCheckpoint ??= this.db.prepare('SELECT stream_sequence FROM checkpoint WHERE id = 1');
    return (this.#readCheckpoint.get() as { stream_sequence: number }).stream_sequence;
  }

  /** Creation time of the event stream the checkpoint counts in (undefined: none adopted yet). */
  streamCreated(): string | undefined {
    const row = this.db.prepare('SELECT stream_created FROM checkpoint WHERE id = 1').get() as {
      stream_created: string | null;
    };
    return row.stream_created ?? undefined;
  }

  /** Records which event stream the projection reads (see {@link streamCreated}). */
  setStreamCreated(created: string): void {
    this.db.prepare('UPDATE checkpoint SET stream_created = :c WHERE id = 1').run({ c: created });
  }

  /** Runs `fn` in one write transaction (rolled back if it throws). */
  transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

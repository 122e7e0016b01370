// The tests open the database file directly (as another process would) with the driver SqliteClient uses.
declare module "better-sqlite3" {
  interface Statement {
    run(...params: ReadonlyArray<unknown>): unknown
    get(...params: ReadonlyArray<unknown>): unknown
    all(...params: ReadonlyArray<unknown>): Array<unknown>
  }
  class Database {
    constructor(filename: string, options?: { readonly?: boolean })
    prepare(sql: string): Statement
    pragma(source: string, options?: { simple?: boolean }): unknown
    exec(source: string): this
    close(): void
  }
  export default Database
}

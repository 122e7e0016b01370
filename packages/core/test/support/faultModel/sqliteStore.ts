/**
 * The SQLite store for the fault model's SQLite histories, loaded the way the Promise facade loads it (an optional
 * package named at run time): core cannot depend on @renew/store-sqlite, which depends on core.
 */
import type { RefreshError, TokenStore } from "@renew/core"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

interface SqliteStoreModule {
  readonly SqliteTokenStore: {
    readonly layer: (options: {
      readonly filename: string
      readonly leaseTtl?: Duration.DurationInput
    }) => Layer.Layer<TokenStore.TokenStore, RefreshError.StoreError | RefreshError.ConfigurationError>
    readonly make: (options: {
      readonly filename: string
    }) => Effect.Effect<TokenStore.TokenStore["Type"], RefreshError.StoreError | RefreshError.ConfigurationError, Scope.Scope>
  }
}

const SQLITE_STORE_PACKAGE = "@renew/store-sqlite"

export const { SqliteTokenStore } = (await import(SQLITE_STORE_PACKAGE)) as SqliteStoreModule

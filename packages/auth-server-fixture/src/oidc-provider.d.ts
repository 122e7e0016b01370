// Minimal typing for the parts of oidc-provider 9.13.3 this fixture uses (the package ships no types).
// Deliberately loose: it is internal to this package and never appears in its public declarations.
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http"

  export type Configuration = Record<string, unknown>

  export interface InteractionPrompt {
    readonly name: string
    readonly reasons: ReadonlyArray<string>
    readonly details: {
      readonly missingOIDCScope?: ReadonlyArray<string>
      readonly missingOIDCClaims?: ReadonlyArray<string>
      readonly missingResourceScopes?: Readonly<Record<string, ReadonlyArray<string>>>
      readonly [key: string]: unknown
    }
  }

  export interface Interaction {
    readonly uid: string
    readonly prompt: InteractionPrompt
    readonly params: Readonly<Record<string, unknown>>
    readonly session?: { readonly accountId?: string }
    readonly grantId?: string
  }

  export interface GrantInstance {
    addOIDCScope(scope: string): void
    addOIDCClaims(claims: ReadonlyArray<string>): void
    addResourceScope(indicator: string, scope: string): void
    save(): Promise<string>
  }

  export interface GrantModel {
    new (properties: { accountId: string; clientId: string }): GrantInstance
    find(id: string): Promise<GrantInstance | undefined>
  }

  export interface ClientInstance {
    readonly clientId: string
    clientSecret: string
  }

  export interface ClientModel {
    find(id: string): Promise<ClientInstance | undefined>
  }

  export const errors: {
    readonly InvalidRequest: new (description?: string) => Error
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration)
    readonly issuer: string
    readonly Grant: GrantModel
    readonly Client: ClientModel
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean }
    ): Promise<void>
    on(event: string, listener: (...args: Array<unknown>) => void): this
  }
}

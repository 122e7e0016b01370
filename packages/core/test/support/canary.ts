/**
 * The fixture's canary check, bound to the client secret these tests give the engine.
 */
import * as Fixture from "@renew/scripted-endpoint-fixture"
import { CLIENT_SECRET } from "./harness.js"

export const seenErrors = (): Fixture.SeenErrors => Fixture.seenErrors(CLIENT_SECRET)

import { HttpClient } from "@effect/platform"
import { BearerClient } from '../../src'
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const api = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer("user-42"))
  return yield* api.get("https://api.example.com/me")
})

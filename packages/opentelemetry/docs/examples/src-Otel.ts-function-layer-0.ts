import { Otel } from '../../src'

const Telemetry = Otel.layer({ serviceName: "billing-worker", endpoint: "http://localhost:4318" })
program.pipe(Effect.provide(Engine), Effect.provide(Telemetry))

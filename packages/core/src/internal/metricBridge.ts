/**
 * Renew's metrics are Effect metrics (process-wide, read by `Metric.value` and by any Effect metrics exporter) that
 * also record into OpenTelemetry meters while one is attached: the application's global MeterProvider (the Promise
 * facade, `OpenTelemetry.layerGlobal`) or `@renew/opentelemetry`'s own. The OpenTelemetry API offers no way to read
 * Effect's registry from a MeterProvider the application set up, so each update is recorded on both sides.
 *
 * @internal
 */
import type * as OtelApi from "@opentelemetry/api"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricLabel from "effect/MetricLabel"

/** @internal */
export interface Descriptor {
  readonly name: string
  readonly unit: string
  readonly description: string
}

type Kind = "counter" | "histogram" | "gauge"

interface Registered extends Descriptor {
  readonly kind: Kind
  readonly boundaries?: ReadonlyArray<number> | undefined
}

/** The names of every bridged metric defined so far. @internal */
export const names = new Set<string>()

/** Gives the meter to record into now, or `undefined` (e.g. no global MeterProvider registered yet). */
type MeterSource = () => OtelApi.Meter | undefined

const sources = new Set<MeterSource>()

/** Records Renew's metrics into `source()`'s meter until the returned function is called. @internal */
export const addMeterSource = (source: MeterSource): () => void => {
  sources.add(source)
  return () => void sources.delete(source)
}

type Record = (value: number, attributes: OtelApi.Attributes) => void

const instruments = new WeakMap<OtelApi.Meter, Map<string, Record>>()

const instrumentOf = (meter: OtelApi.Meter, metric: Registered): Record => {
  let byName = instruments.get(meter)
  if (byName === undefined) instruments.set(meter, byName = new Map())
  let record = byName.get(metric.name)
  if (record === undefined) {
    const options = { unit: metric.unit, description: metric.description }
    if (metric.kind === "counter") {
      const counter = meter.createCounter(metric.name, options)
      record = (value, attributes) => counter.add(value, attributes)
    } else if (metric.kind === "histogram") {
      const histogram = meter.createHistogram(metric.name, {
        ...options,
        advice: { explicitBucketBoundaries: [...(metric.boundaries ?? [])] }
      })
      record = (value, attributes) => histogram.record(value, attributes)
    } else {
      const gauge = meter.createGauge(metric.name, options)
      record = (value, attributes) => gauge.record(value, attributes)
    }
    byName.set(metric.name, record)
  }
  return record
}

const attributesOf = (tags: ReadonlyArray<MetricLabel.MetricLabel>): OtelApi.Attributes => {
  const attributes: OtelApi.Attributes = {}
  for (const tag of tags) attributes[tag.key] = tag.value
  return attributes
}

const record = (metric: Registered, value: number, tags: ReadonlyArray<MetricLabel.MetricLabel>): void => {
  if (sources.size === 0) return
  let seen: Set<OtelApi.Meter> | undefined
  for (const source of sources) {
    const meter = source()
    if (meter === undefined) continue
    // Two managers attached to the same global provider record once.
    if (sources.size > 1) {
      if ((seen ??= new Set()).has(meter)) continue
      seen.add(meter)
    }
    instrumentOf(meter, metric)(value, attributesOf(tags))
  }
}

const bridge = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  registered: Registered,
  absolute: (tags: ReadonlyArray<MetricLabel.MetricLabel>) => number | undefined
): Metric.Metric<Type, In, Out> => {
  names.add(registered.name)
  return Metric.make(
    metric.keyType,
    (input, tags) => {
      metric.unsafeUpdate(input, tags)
      record(registered, Number(input), tags)
    },
    (tags) => metric.unsafeValue(tags),
    (input, tags) => {
      metric.unsafeModify(input, tags)
      // A gauge moved by a delta is recorded at its new value.
      record(registered, absolute(tags) ?? Number(input), tags)
    }
  )
}

/** A monotonic counter. @internal */
export const counter = (descriptor: Descriptor): Metric.Metric.Counter<number> =>
  bridge(
    Metric.counter(descriptor.name, { description: descriptor.description, incremental: true }),
    { ...descriptor, kind: "counter" },
    () => undefined
  )

/** A histogram with explicit bucket boundaries, in `unit`. @internal */
export const histogram = (
  descriptor: Descriptor & { readonly boundaries: ReadonlyArray<number> }
): Metric.Metric.Histogram<number> =>
  bridge(
    Metric.histogram(descriptor.name, MetricBoundaries.fromIterable(descriptor.boundaries), descriptor.description),
    { ...descriptor, kind: "histogram" },
    () => undefined
  )

/** A gauge (the last value set). @internal */
export const gauge = (descriptor: Descriptor): Metric.Metric.Gauge<number> => {
  const metric = Metric.gauge(descriptor.name, { description: descriptor.description })
  return bridge(metric, { ...descriptor, kind: "gauge" }, (tags) => Number(metric.unsafeValue(tags).value))
}

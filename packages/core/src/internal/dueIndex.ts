/**
 * The memory store's due index: a binary min-heap of (due time, key) with lazy deletion. A key's current due time
 * lives in a Map; heap entries that no longer match it are skipped when they surface, so a rewrite is O(log n) and
 * never searches the heap.
 *
 * @internal
 */

interface Entry {
  readonly dueAt: number
  readonly key: string
}

/** A heap entry: live only while `seq` is the key's latest (a key set twice to the same time has one live entry). */
interface HeapEntry extends Entry {
  readonly seq: number
}

/** @internal */
export interface DueIndex {
  /** Records `key` as due at `dueAt`, or removes it (`undefined`). */
  readonly set: (key: string, dueAt: number | undefined) => void
  /** Removes and returns up to `limit` keys due at `now`, earliest first, each moved to `holdUntil`. */
  readonly claim: (now: number, limit: number, holdUntil: number) => Array<Entry>
  readonly backlog: (now: number) => { due: number; oldestDueAt: number | undefined; scheduled: number }
}

/** @internal */
export const make = (): DueIndex => {
  const current = new Map<string, HeapEntry>()
  const heap: Array<HeapEntry> = []
  let seq = 0

  const less = (a: HeapEntry, b: HeapEntry) => a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.key < b.key)
  const schedule = (key: string, dueAt: number) => {
    const entry = { key, dueAt, seq: seq++ }
    current.set(key, entry)
    push(entry)
  }
  const push = (entry: HeapEntry) => {
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!less(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }
  const pop = (): HeapEntry | undefined => {
    const top = heap[0]
    const last = heap.pop()
    if (top === undefined || last === undefined || heap.length === 0) return top
    heap[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < heap.length && less(heap[left]!, heap[smallest]!)) smallest = left
      if (right < heap.length && less(heap[right]!, heap[smallest]!)) smallest = right
      if (smallest === i) break
      ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
      i = smallest
    }
    return top
  }
  const isCurrent = (entry: HeapEntry) => current.get(entry.key)?.seq === entry.seq
  // Stale entries are dropped as they surface; rebuilding when they outnumber live ones bounds the heap's size.
  const compact = () => {
    if (heap.length <= 2 * current.size + 64) return
    heap.length = 0
    for (const entry of current.values()) push(entry)
  }

  return {
    set: (key, dueAt) => {
      if (dueAt === undefined) {
        current.delete(key)
      } else if (current.get(key)?.dueAt !== dueAt) {
        schedule(key, dueAt)
      }
      compact()
    },
    claim: (now, limit, holdUntil) => {
      const claimed: Array<Entry> = []
      while (claimed.length < limit && heap.length > 0) {
        const top = heap[0]!
        if (!isCurrent(top)) {
          pop()
          continue
        }
        if (top.dueAt > now) break
        pop()
        claimed.push({ key: top.key, dueAt: top.dueAt })
        schedule(top.key, holdUntil)
      }
      return claimed
    },
    backlog: (now) => {
      let due = 0
      let oldestDueAt: number | undefined
      for (const { dueAt } of current.values()) {
        if (dueAt > now) continue
        due++
        if (oldestDueAt === undefined || dueAt < oldestDueAt) oldestDueAt = dueAt
      }
      return { due, oldestDueAt, scheduled: current.size }
    }
  }
}

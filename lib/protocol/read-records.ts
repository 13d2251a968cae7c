import type { RecordSplitter } from './hub-protocol.js'
import type { HubMessage } from './messages.js'

/**
 * The loop every protocol's reader runs: split a chunk into records with the
 * framing, parse each into `out` (a method call, so a definition's `parse`
 * keeps its `this`). A framing error (a record too large, not UTF-8) is thrown
 * after the records before it were parsed, so errors come in stream order
 * however the bytes were cut. `records` is scratch space, left empty.
 * Runs per chunk, so it takes the splitter itself rather than a closure.
 */
export function readRecords<R> (
  splitter: RecordSplitter<R>, chunk: Buffer, records: R[], codec: { parse (record: R): HubMessage | undefined }, out: HubMessage[]
): void {
  // Empty on entry: the `finally` below leaves it so.
  let framingError: unknown = null
  try {
    splitter.split(chunk, records)
  } catch (err) {
    framingError = err
  }
  try {
    for (let i = 0; i < records.length; i++) {
      const message = codec.parse(records[i]!)
      if (message !== undefined) out.push(message)
    }
  } finally {
    // Not `length = 0`: that is a runtime call and drops the backing store,
    // which the next push allocates again; pop is inlined and keeps it.
    while (records.length !== 0) records.pop()
  }
  if (framingError !== null) throw framingError
}

// Server-Sent Events from a fetch() response body, parsed as the bytes arrive.
//
// Why not EventSource: it can only GET and cannot send an Authorization header, and the chat
// endpoint is a POST that may need a bearer token. So the body stream is read chunk by chunk,
// decoded, and split into events here (the SSE rules the server relies on: events end at a blank
// line, a field ends at CR, LF or CRLF, multi-line data is joined with LF, comments start with ":").

/**
 * @typedef {{ event: string, data: string }} SseMessage
 */

/**
 * Yield each SSE message of `body` as soon as its terminating blank line has arrived.
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<SseMessage>}
 */
export async function* readSse(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  /** @type {string[]} */
  let data = [];
  let event = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A trailing CR may be the first half of CRLF: keep it until the next chunk (or the end).
      let cut = done ? buffer.length : buffer.length - (buffer.endsWith("\r") ? 1 : 0);
      const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
      const rest = lines.pop() ?? "";
      buffer = rest + buffer.slice(cut);
      if (done && buffer) {
        lines.push(buffer);
        buffer = "";
      }
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: event || "message", data: data.join("\n") };
          data = [];
          event = "";
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") data.push(value);
          else if (field === "event") event = value;
        }
      }
      if (done) break;
    }
    if (data.length) yield { event: event || "message", data: data.join("\n") };
  } finally {
    reader.releaseLock();
  }
}

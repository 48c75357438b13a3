// Settings (kept in localStorage) and the two HTTP APIs the playground talks to.
//
// The page is the same whether it is served by `make dev` (both APIs on its own origin) or by any
// static server pointed at deployed function URLs (two other origins, CORS): everything it calls
// is derived from the two base URLs in the settings, and every request carries the bearer token
// when one is set.

import { readSse } from "./sse.js";

const STORAGE_KEY = "chatkit-playground.settings";

/**
 * @typedef {{ chatUrl: string, conversationsUrl: string, token: string }} Settings
 * @typedef {{ id: string, title: string | null, created_at: string, updated_at: string }} Conversation
 * @typedef {{ id: string, name: string, arguments: Record<string, unknown>, output?: unknown, error?: string }} ToolCall
 * @typedef {{ id: string, name: string, mime_type: string, size: number, preview_url?: string }} MessageAttachment
 * @typedef {{ id: string, role: "user" | "assistant" | "tool" | "widget", content: string, created_at: string, tool_calls?: ToolCall[], widget?: import("./widgets.js").Component, attachments?: MessageAttachment[] }} Message
 * @typedef {{ conversations: Conversation[], next_cursor: string | null }} ConversationPage
 * @typedef {{ messages: Message[], next_cursor: string | null }} MessagePage
 * @typedef {Conversation & MessagePage} ConversationWithMessages
 * @typedef {{ type: "thinking", thread_id?: string, content?: string }
 *   | { type: "text", content: string }
 *   | { type: "tool_call", call_id: string, name: string, arguments: Record<string, unknown> }
 *   | { type: "tool_result", call_id: string, name: string, output?: unknown, error?: string }
 *   | { type: "widget", item_id: string, widget: import("./widgets.js").Component, copy_text?: string }
 *   | { type: "error", message: string }} ChatEvent
 * @typedef {{ type: string, [field: string]: any }} ChatKitEvent one event of a ChatKit stream
 */

/** @returns {Settings} the defaults: both APIs on the page's own origin, no token. */
export function defaultSettings() {
  return { chatUrl: location.origin, conversationsUrl: location.origin, token: "" };
}

/** @returns {Settings} */
export function loadSettings() {
  const defaults = defaultSettings();
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}");
    return {
      chatUrl: typeof stored.chatUrl === "string" && stored.chatUrl ? stored.chatUrl : defaults.chatUrl,
      conversationsUrl:
        typeof stored.conversationsUrl === "string" && stored.conversationsUrl
          ? stored.conversationsUrl
          : defaults.conversationsUrl,
      token: typeof stored.token === "string" ? stored.token : "",
    };
  } catch {
    return defaults;
  }
}

/** @param {Settings} settings */
export function saveSettings(settings) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(settings));
}

/**
 * The endpoint under a base URL; a base that already ends with the endpoint's path is kept, so
 * both "https://fn.lambda-url.../" and "https://fn.lambda-url.../chatkit" work.
 * @param {string} base
 * @param {string} path without a leading slash
 */
export function endpoint(base, path) {
  const url = new URL(base, location.href);
  const trimmed = url.pathname.replace(/\/+$/, "");
  if (!trimmed.endsWith(`/${path}`)) url.pathname = `${trimmed}/${path}`;
  else url.pathname = trimmed;
  url.search = "";
  url.hash = "";
  return url.toString();
}

/** An HTTP answer that was not 2xx, with the server's `detail` when it sent one. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} detail
   */
  constructor(status, detail) {
    super(status ? `${status}: ${detail}` : detail);
    this.status = status;
    this.detail = detail;
  }

  /** A sentence for people, with what to do about it when that is known. */
  get advice() {
    if (this.status === 401) {
      return `Not signed in (${this.detail}). Set a bearer token in Settings.`;
    }
    if (this.status === 403) return `Not allowed: ${this.detail}`;
    if (this.status === 0) return this.detail;
    return `Error ${this.status}: ${this.detail}`;
  }
}

/**
 * @param {Response} response
 * @returns {Promise<ApiError>}
 */
async function errorOf(response) {
  let detail = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (typeof body?.detail === "string") detail = body.detail;
    else if (body?.detail !== undefined) detail = JSON.stringify(body.detail);
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, detail);
}

/**
 * fetch() whose network failures (offline, CORS refused, bad URL) become an ApiError with status 0.
 * @param {string} url
 * @param {RequestInit} init
 */
async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(
      0,
      `Could not reach ${new URL(url).origin} (${error instanceof Error ? error.message : error}). ` +
        "Check the URLs in Settings; another origin must allow this page's origin (CORS).",
    );
  }
}

export class Api {
  /** @param {Settings} settings */
  constructor(settings) {
    this.settings = settings;
  }

  /** @param {Record<string, string>} [extra] */
  headers(extra = {}) {
    /** @type {Record<string, string>} */
    const headers = { ...extra };
    if (this.settings.token.trim()) headers.Authorization = `Bearer ${this.settings.token.trim()}`;
    return headers;
  }

  /**
   * A JSON request to the conversations API.
   * @param {string} method
   * @param {string} path under /api/conversations ("" for the collection)
   * @param {unknown} [body]
   */
  async crud(method, path, body) {
    const url = endpoint(this.settings.conversationsUrl, "api/conversations") + path;
    const init = {
      method,
      headers: this.headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    const response = await send(url, init);
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  /**
   * @param {string | null} after
   * @param {number} limit
   * @returns {Promise<ConversationPage>}
   */
  listConversations(after, limit) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (after) query.set("after", after);
    return this.crud("GET", `?${query}`);
  }

  /**
   * @param {string} id
   * @param {number} limit
   * @returns {Promise<ConversationWithMessages>}
   */
  getConversation(id, limit) {
    return this.crud("GET", `/${encodeURIComponent(id)}?limit=${limit}`);
  }

  /**
   * @param {string} id
   * @param {string} after
   * @param {number} limit
   * @returns {Promise<MessagePage>}
   */
  listMessages(id, after, limit) {
    const query = new URLSearchParams({ limit: String(limit), after });
    return this.crud("GET", `/${encodeURIComponent(id)}/messages?${query}`);
  }

  /**
   * @param {string} id
   * @param {string} title
   * @returns {Promise<Conversation>}
   */
  rename(id, title) {
    return this.crud("PATCH", `/${encodeURIComponent(id)}`, { title });
  }

  /** @param {string} id */
  remove(id) {
    return this.crud("DELETE", `/${encodeURIComponent(id)}`);
  }

  /**
   * What the composer may offer (`GET /api/composer`): the models of MODEL_CHOICES, tool ids.
   * @returns {Promise<{ models: { id: string, label: string, default: boolean }[], tools: string[] }>}
   */
  async composer() {
    const response = await send(endpoint(this.settings.chatUrl, "api/composer"), { headers: this.headers() });
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  /**
   * A non-streaming ChatKit request (JSON in, JSON out) to the chat function.
   * @param {Record<string, unknown>} body
   */
  async chatkit(body) {
    const response = await send(endpoint(this.settings.chatUrl, "chatkit"), {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  /**
   * ChatKit's two-phase upload, first phase: the attachment and where to upload its bytes.
   * @param {string} name @param {number} size @param {string} mimeType
   * @returns {Promise<{ id: string, upload_descriptor: { url: string, method: string, headers?: Record<string, string> } }>}
   */
  createAttachment(name, size, mimeType) {
    return this.chatkit({ type: "attachments.create", params: { name, size, mime_type: mimeType } });
  }

  /** @param {string} id */
  deleteAttachment(id) {
    return this.chatkit({ type: "attachments.delete", params: { attachment_id: id } });
  }

  /**
   * A widget action through the ChatKit protocol: `threads.custom_action` (streamed: yields the
   * ChatKit events) or, for an action with `streaming: false`, `threads.sync_custom_action`
   * (yields one `sync` event with the updated item). A refusal (4xx) is thrown as ApiError.
   * @param {string} threadId
   * @param {string} itemId the widget item the action came from
   * @param {import("./widgets.js").WidgetAction} action
   * @returns {AsyncGenerator<ChatKitEvent>}
   */
  async *widgetAction(threadId, itemId, action) {
    const sync = action.streaming === false;
    const response = await send(endpoint(this.settings.chatUrl, "chatkit"), {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({
        type: sync ? "threads.sync_custom_action" : "threads.custom_action",
        params: { thread_id: threadId, item_id: itemId, action: { type: action.type, payload: action.payload ?? {} } },
      }),
    });
    if (!response.ok) throw await errorOf(response);
    if (sync) {
      yield { type: "sync", ...(await response.json()) };
      return;
    }
    if (!response.body) throw new ApiError(response.status, "the answer has no body");
    for await (const message of readSse(response.body)) yield JSON.parse(message.data);
  }

  /**
   * Send one message with the simple SSE protocol; resolves once the answer starts streaming
   * (a 4xx is thrown as ApiError before any event), then yields its events until [DONE].
   * @param {string} message
   * @param {string | null} threadId
   * @param {AbortSignal} signal
   * @param {string[]} [attachments] ids of uploaded attachments
   * @param {string} [model] one of the models of `composer()` (none: the server's default)
   * @returns {Promise<{ threadId: string | null, events: AsyncGenerator<ChatEvent> }>}
   */
  async chat(message, threadId, signal, attachments = [], model = "") {
    /** @type {Record<string, unknown>} */
    const body = threadId ? { message, thread_id: threadId } : { message };
    if (attachments.length) body.attachments = attachments;
    if (model) body.model = model;
    const response = await send(endpoint(this.settings.chatUrl, "chatkit"), {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok) throw await errorOf(response);
    if (!response.body) throw new ApiError(response.status, "the answer has no body");
    return { threadId: response.headers.get("X-Thread-Id"), events: chatEvents(response.body) };
  }
}

/**
 * The JSON events of a simple-protocol stream, ending at [DONE].
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<ChatEvent>}
 */
async function* chatEvents(body) {
  for await (const message of readSse(body)) {
    if (message.data === "[DONE]") return;
    if (message.event === "error") {
      yield { type: "error", message: message.data };
      continue;
    }
    yield /** @type {ChatEvent} */ (JSON.parse(message.data));
  }
  throw new ApiError(0, "The stream ended before [DONE]: the connection was cut.");
}

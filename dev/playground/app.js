// The playground: a conversation sidebar over the REST API and a chat view over the simple SSE
// protocol. Plain DOM, no framework and no build step, so `make dev` serves it as it is and any
// static server can too. Text from the server is only ever set as textContent (never HTML).
// Widgets (the todo tools' task list and cards) are rendered by widgets.js; their buttons send
// ChatKit widget actions, whose answer updates the widget in place.

import { Api, ApiError, defaultSettings, endpoint, loadSettings, saveSettings } from "./api.js";
import { ComposerAttachments, attachmentList } from "./attachments.js";
import { renderWidget } from "./widgets.js";

/** @typedef {import("./api.js").Conversation} Conversation */
/** @typedef {import("./api.js").Message} Message */
/** @typedef {import("./api.js").ToolCall} ToolCall */
/** @typedef {import("./api.js").ChatEvent} ChatEvent */

const query = new URLSearchParams(location.search);
/** Page sizes; the query can lower them (`?conversations_page=5&messages_page=4`) to try paging. */
const CONVERSATIONS_PAGE = pageSize(query.get("conversations_page"), 20);
const MESSAGES_PAGE = pageSize(query.get("messages_page"), 30);
const UNTITLED = "Untitled conversation";

/** @param {string | null} raw @param {number} fallback */
function pageSize(raw, fallback) {
  const value = Number(raw);
  return Number.isInteger(value) && value >= 1 && value <= 100 ? value : fallback;
}

/** @template {HTMLElement} T @param {string} id @returns {T} */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return /** @type {T} */ (element);
}

const ui = {
  endpoint: byId("endpoint"),
  sidebar: byId("sidebar"),
  sidebarToggle: byId("sidebar-toggle"),
  newChat: byId("new-chat"),
  conversationScroller: byId("conversation-scroller"),
  conversationList: byId("conversation-list"),
  sidebarStatus: byId("sidebar-status"),
  moreConversations: /** @type {HTMLButtonElement} */ (byId("more-conversations")),
  chatTitle: byId("chat-title"),
  chatStatus: byId("chat-status"),
  error: byId("error"),
  errorText: byId("error-text"),
  dismissError: byId("dismiss-error"),
  messageScroller: byId("message-scroller"),
  messages: byId("messages"),
  moreMessages: /** @type {HTMLButtonElement} */ (byId("more-messages")),
  emptyState: byId("empty-state"),
  composer: /** @type {HTMLFormElement} */ (byId("composer")),
  input: /** @type {HTMLTextAreaElement} */ (byId("message-input")),
  modelPicker: /** @type {HTMLSelectElement} */ (byId("model-picker")),
  send: /** @type {HTMLButtonElement} */ (byId("send")),
  stop: /** @type {HTMLButtonElement} */ (byId("stop")),
  settingsDialog: /** @type {HTMLDialogElement} */ (byId("settings-dialog")),
  settingsForm: /** @type {HTMLFormElement} */ (byId("settings-form")),
  chatUrl: /** @type {HTMLInputElement} */ (byId("chat-url")),
  conversationsUrl: /** @type {HTMLInputElement} */ (byId("conversations-url")),
  token: /** @type {HTMLTextAreaElement} */ (byId("token")),
  openSettings: byId("open-settings"),
  cancelSettings: byId("cancel-settings"),
  resetSettings: byId("reset-settings"),
  deleteDialog: /** @type {HTMLDialogElement} */ (byId("delete-dialog")),
  deleteText: byId("delete-text"),
};

const state = {
  api: new Api(loadSettings()),
  /** @type {Map<string, Conversation>} */
  conversations: new Map(),
  /** @type {string | null} */
  conversationCursor: null,
  conversationsDone: false,
  loadingConversations: false,
  /** Bumped whenever the list restarts, so a page that arrives late is dropped. */
  listGeneration: 0,
  /** @type {string | null} the open conversation (null: a new chat) */
  activeId: null,
  /** @type {string | null} */
  messageCursor: null,
  loadingMessages: false,
  viewGeneration: 0,
  /** @type {AbortController | null} the running chat request */
  streaming: null,
};

// --- small DOM helpers -------------------------------------------------------------------------

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attributes = {}, children = []) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

const ICONS = {
  pencil: "M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4",
  trash: "M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  tool: "M14 7a4 4 0 0 0 5 5l-8 8a2 2 0 0 1-3-3l8-8a4 4 0 0 0-2-2z",
};

/** @param {keyof typeof ICONS} name */
function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/** @param {unknown} value */
function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

/** @param {string} iso */
function shortTime(iso) {
  const when = new Date(iso);
  const now = new Date();
  if (when.toDateString() === now.toDateString()) {
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return when.toLocaleDateString([], { month: "short", day: "numeric" });
}

/** @param {string} text */
function showError(text) {
  ui.errorText.textContent = text;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.errorText.textContent = "";
}

/** @param {unknown} error */
function describe(error) {
  if (error instanceof ApiError) return error.advice;
  return error instanceof Error ? error.message : String(error);
}

function nearBottom() {
  const s = ui.messageScroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToBottom() {
  ui.messageScroller.scrollTop = ui.messageScroller.scrollHeight;
}

function updateEmptyState() {
  ui.emptyState.hidden = ui.messages.childElementCount > 0 || state.loadingMessages;
}

// --- settings ----------------------------------------------------------------------------------

function showEndpoint() {
  const { chatUrl, token } = state.api.settings;
  let where = chatUrl;
  try {
    const url = new URL(endpoint(chatUrl, "chatkit"));
    where = url.origin === location.origin ? "this server" : url.host;
  } catch {
    // an unparsable URL is shown as typed
  }
  ui.endpoint.textContent = `${where} · ${token.trim() ? "token set" : "no token"}`;
}

function openSettings() {
  const settings = state.api.settings;
  ui.chatUrl.value = settings.chatUrl;
  ui.conversationsUrl.value = settings.conversationsUrl;
  ui.token.value = settings.token;
  ui.settingsDialog.showModal();
}

function applySettings() {
  const settings = {
    chatUrl: ui.chatUrl.value.trim(),
    conversationsUrl: ui.conversationsUrl.value.trim(),
    token: ui.token.value.trim(),
  };
  saveSettings(settings);
  state.api = new Api(settings);
  showEndpoint();
  clearError();
  startNewChat();
  void reloadConversations();
  void loadModels();
}

// --- sidebar -----------------------------------------------------------------------------------

/** @param {Conversation} conversation */
function titleOf(conversation) {
  return conversation.title?.trim() || UNTITLED;
}

/** @param {Conversation} conversation */
function conversationItem(conversation) {
  const title = titleOf(conversation);
  const link = el("a", { href: `#c=${encodeURIComponent(conversation.id)}`, class: "conversation-link" }, [
    el("span", { class: "conversation-title" }, [title]),
    el("time", { class: "conversation-time", datetime: conversation.updated_at }, [
      shortTime(conversation.updated_at),
    ]),
  ]);
  if (conversation.id === state.activeId) link.setAttribute("aria-current", "page");
  const rename = el("button", { type: "button", class: "icon-button", "aria-label": `Rename ${title}` }, [
    icon("pencil"),
  ]);
  const remove = el("button", { type: "button", class: "icon-button", "aria-label": `Delete ${title}` }, [
    icon("trash"),
  ]);
  rename.addEventListener("click", () => startRename(conversation.id));
  remove.addEventListener("click", () => void confirmDelete(conversation.id));
  const item = el("li", { class: "conversation", "data-id": conversation.id }, [
    link,
    el("div", { class: "conversation-actions" }, [rename, remove]),
  ]);
  return item;
}

/** @param {string} id */
function itemOf(id) {
  return ui.conversationList.querySelector(`li[data-id="${CSS.escape(id)}"]`);
}

function renderSidebarStatus() {
  ui.moreConversations.hidden = state.conversationsDone;
  if (state.loadingConversations) ui.sidebarStatus.textContent = "Loading…";
  else if (state.conversations.size === 0 && state.conversationsDone) {
    ui.sidebarStatus.textContent = "No conversations yet.";
  } else ui.sidebarStatus.textContent = "";
}

async function reloadConversations() {
  state.listGeneration += 1;
  state.conversations.clear();
  state.conversationCursor = null;
  state.conversationsDone = false;
  state.loadingConversations = false;
  ui.conversationList.replaceChildren();
  await loadMoreConversations();
}

/** Fetch the next page (by cursor) and append it; a restart meanwhile drops the answer. */
async function loadMoreConversations() {
  if (state.loadingConversations || state.conversationsDone) return;
  const generation = state.listGeneration;
  state.loadingConversations = true;
  renderSidebarStatus();
  try {
    const page = await state.api.listConversations(state.conversationCursor, CONVERSATIONS_PAGE);
    if (generation !== state.listGeneration) return;
    for (const conversation of page.conversations) {
      if (state.conversations.has(conversation.id)) continue;
      state.conversations.set(conversation.id, conversation);
      ui.conversationList.append(conversationItem(conversation));
    }
    state.conversationCursor = page.next_cursor;
    state.conversationsDone = !page.next_cursor;
  } catch (error) {
    if (generation !== state.listGeneration) return;
    state.conversationsDone = true;
    showError(`Conversations: ${describe(error)}`);
  } finally {
    if (generation === state.listGeneration) {
      state.loadingConversations = false;
      renderSidebarStatus();
      if (!state.conversationsDone) fillConversationScroller();
    }
  }
}

/** Keep loading while the "load more" button is in view (a short first page on a tall screen). */
function fillConversationScroller() {
  const scroller = ui.conversationScroller.getBoundingClientRect();
  const more = ui.moreConversations.getBoundingClientRect();
  if (more.top < scroller.bottom + 100) void loadMoreConversations();
}

function markActive() {
  for (const link of ui.conversationList.querySelectorAll(".conversation-link")) {
    const item = link.closest("li");
    if (item?.dataset.id === state.activeId) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** @param {string} id */
function startRename(id) {
  const item = itemOf(id);
  const conversation = state.conversations.get(id);
  if (!item || !conversation) return;
  const link = /** @type {HTMLElement} */ (item.querySelector(".conversation-link"));
  const input = /** @type {HTMLInputElement} */ (
    el("input", { type: "text", class: "rename-input", "aria-label": "New title", maxlength: "200" })
  );
  input.value = conversation.title ?? "";
  link.hidden = true;
  item.prepend(input);
  input.focus();
  input.select();
  let finished = false;
  /** @param {boolean} save */
  const finish = async (save) => {
    if (finished) return;
    finished = true;
    const title = input.value.trim();
    input.remove();
    link.hidden = false;
    if (!save || !title || title === conversation.title) {
      link.focus();
      return;
    }
    try {
      const renamed = await state.api.rename(id, title);
      state.conversations.set(id, renamed);
      const fresh = conversationItem(renamed);
      ui.conversationList.prepend(fresh); // renaming moves it to the top, as the API orders it
      item.remove();
      if (id === state.activeId) ui.chatTitle.textContent = titleOf(renamed);
      /** @type {HTMLElement | null} */ (fresh.querySelector(".conversation-link"))?.focus();
    } catch (error) {
      showError(`Rename: ${describe(error)}`);
    }
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      void finish(true);
    } else if (event.key === "Escape") {
      event.preventDefault();
      void finish(false);
    }
  });
  input.addEventListener("blur", () => void finish(true));
}

/** @param {string} id */
async function confirmDelete(id) {
  const conversation = state.conversations.get(id);
  if (!conversation) return;
  ui.deleteText.textContent = `“${titleOf(conversation)}” and all its messages will be deleted.`;
  ui.deleteDialog.returnValue = "";
  ui.deleteDialog.showModal();
  const answer = await new Promise((resolve) =>
    ui.deleteDialog.addEventListener("close", () => resolve(ui.deleteDialog.returnValue), { once: true }),
  );
  if (answer !== "delete") return;
  try {
    await state.api.remove(id);
    state.conversations.delete(id);
    itemOf(id)?.remove();
    renderSidebarStatus();
    if (id === state.activeId) startNewChat();
    ui.newChat.focus();
  } catch (error) {
    showError(`Delete: ${describe(error)}`);
  }
}

// --- messages ----------------------------------------------------------------------------------

/** @param {string} text @param {import("./attachments.js").SentAttachment[]} [attachments] */
function userMessage(text, attachments = []) {
  const bubble = el("div", { class: "bubble" }, [text]);
  if (attachments.length) bubble.append(attachmentList(attachments));
  return el("li", { class: "message user" }, [bubble]);
}

/** @param {string} text @param {string} [stateName] */
function assistantMessage(text, stateName = "done") {
  const bubble = el("div", { class: "bubble" }, [text]);
  return el("li", { class: "message assistant", "data-state": stateName }, [
    el("span", { class: "avatar", "aria-hidden": "true" }, ["AI"]),
    bubble,
  ]);
}

/**
 * @typedef {{ id: string, name: string, arguments: Record<string, unknown>, output?: unknown, error?: string | null }} ToolCallView
 * @typedef {"running" | "done" | "failed"} ToolStatus
 */

/**
 * The tool activity of one turn: one workflow block ("Used 2 tools", collapsible) with a task row
 * per call, as ChatKit shows its workflow item. Rows are added with `addToolTask`.
 */
function toolWorkflow() {
  const details = el("details", { class: "tool-call", open: "" }, [
    el("summary", {}, [
      icon("tool"),
      el("span", { class: "workflow-title" }, [""]),
      el("span", { class: "badge running" }, ["running"]),
    ]),
    el("ol", { class: "tool-tasks", "aria-label": "Tool calls" }),
  ]);
  return el("li", { class: "message tool", "data-status": "running" }, [details]);
}

/**
 * The workflow block of the turn on screen: the tool block after the last user message, or a
 * new one placed by `place` (consecutive tool messages of one turn share a block).
 * @param {(element: HTMLElement) => void} place
 */
function turnWorkflow(place) {
  const entries = ui.messages.querySelectorAll(".message.user, .message.tool");
  const last = /** @type {HTMLElement | undefined} */ (entries[entries.length - 1]);
  if (last?.classList.contains("tool")) return last;
  const workflow = toolWorkflow();
  place(workflow);
  return workflow;
}

/**
 * One task row: the tool's name, a short summary of its arguments, its status, the result (or
 * error) once known, and the whole arguments on demand.
 * @param {HTMLElement} workflow @param {ToolCallView} call @param {ToolStatus} status
 */
function addToolTask(workflow, call, status) {
  const row = el("li", { class: "tool-task", "data-call-id": call.id }, [
    el("div", { class: "tool-task-head" }, [
      el("code", { class: "tool-name" }, [call.name]),
      el("span", { class: "tool-summary" }, [argumentsSummary(call.arguments)]),
      el("span", { class: "badge" }),
    ]),
    el("pre", { class: "tool-result" }),
    el("details", { class: "tool-section" }, [
      el("summary", {}, ["Arguments"]),
      el("pre", { class: "tool-arguments" }, [pretty(call.arguments)]),
    ]),
  ]);
  /** @type {HTMLElement} */ (workflow.querySelector(".tool-tasks")).append(row);
  settleToolTask(workflow, row, call, status);
  return row;
}

/**
 * Show a task's status and result, then the block's status and title from all its tasks.
 * @param {HTMLElement} workflow @param {HTMLElement} row
 * @param {{ output?: unknown, error?: string | null }} call @param {ToolStatus} status
 */
function settleToolTask(workflow, row, call, status) {
  row.dataset.status = status;
  const badge = /** @type {HTMLElement} */ (row.querySelector(".badge"));
  badge.className = `badge ${status}`;
  badge.textContent = status;
  /** @type {HTMLElement} */ (row.querySelector(".tool-result")).textContent =
    status === "running" ? "…" : call.error ? call.error : pretty(call.output);
  const statuses = [...workflow.querySelectorAll(".tool-task")].map((task) => task.getAttribute("data-status"));
  const overall = statuses.includes("running") ? "running" : statuses.includes("failed") ? "failed" : "done";
  workflow.dataset.status = overall;
  const summary = /** @type {HTMLElement} */ (workflow.querySelector("summary .badge"));
  summary.className = `badge ${overall}`;
  summary.textContent = overall;
  const count = `${statuses.length} tool${statuses.length === 1 ? "" : "s"}`;
  /** @type {HTMLElement} */ (workflow.querySelector(".workflow-title")).textContent =
    overall === "running" ? `Using ${count}…` : `Used ${count}`;
}

/** @param {Record<string, unknown>} args a call's arguments on one short line */
function argumentsSummary(args) {
  const line = Object.entries(args ?? {})
    .map(([name, value]) => `${name}: ${JSON.stringify(value)}`)
    .join(", ");
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

/**
 * A widget item: the rendered widget (its text when there is no widget JSON to render).
 * @param {string} itemId
 * @param {import("./widgets.js").Component | undefined} widget
 * @param {string} copyText
 */
function widgetMessage(itemId, widget, copyText) {
  const frame = el("div", { class: "widget-frame" });
  const item = el("li", { class: "message widget", "data-item-id": itemId }, [frame]);
  if (copyText) frame.setAttribute("aria-label", copyText);
  showWidget(item, widget, copyText);
  return item;
}

/**
 * Put `widget` into a widget message (replacing what it showed).
 * @param {HTMLElement} item
 * @param {import("./widgets.js").Component | undefined} widget
 * @param {string} [copyText]
 */
function showWidget(item, widget, copyText = "") {
  const frame = /** @type {HTMLElement} */ (item.querySelector(".widget-frame"));
  const itemId = item.dataset.itemId ?? "";
  frame.replaceChildren(
    widget ? renderWidget(widget, (action) => void runWidgetAction(itemId, action)) : el("p", {}, [copyText]),
  );
}

/**
 * Send a widget's action (ChatKit protocol) and apply its answer: the widget updated in place,
 * client effects, a confirmation message; a refusal is shown as an error.
 * @param {string} itemId
 * @param {import("./widgets.js").WidgetAction} action
 */
async function runWidgetAction(itemId, action) {
  const item = /** @type {HTMLElement | null} */ (
    ui.messages.querySelector(`li.widget[data-item-id="${CSS.escape(itemId)}"]`)
  );
  if (!state.activeId || !item) return;
  clearError();
  item.setAttribute("aria-busy", "true");
  try {
    for await (const event of state.api.widgetAction(state.activeId, itemId, action)) {
      if (event.type === "thread.item.updated" && event.update?.type === "widget.root.updated") {
        showWidget(item, event.update.widget);
      } else if (event.type === "sync" && event.updated_item?.widget) {
        showWidget(item, event.updated_item.widget, event.updated_item.copy_text);
      } else if (event.type === "client_effect") {
        clientEffect(event.name, event.data ?? {});
      } else if (event.type === "thread.item.done" && event.item?.type === "assistant_message") {
        const words = event.item.content.map((/** @type {{ text: string }} */ part) => part.text).join("");
        ui.messages.append(assistantMessage(words));
        scrollToBottom();
      } else if (event.type === "error") {
        showError(event.message || "The action failed.");
      }
    }
  } catch (error) {
    showError(`Action: ${describe(error)}`);
  } finally {
    item.removeAttribute("aria-busy");
  }
}

/**
 * A ChatKit client effect: shown in the status line and re-dispatched on `window` as
 * `chatkit.effect` (what the official component emits), for anything on the page that cares.
 * @param {string} name
 * @param {Record<string, unknown>} data
 */
function clientEffect(name, data) {
  if (name === "tasks.changed") {
    const ids = Array.isArray(data.task_ids) ? data.task_ids.map((id) => `#${id}`).join(", ") : "";
    ui.chatStatus.textContent = `Tasks changed: ${ids} ${data.change ?? ""}`.trim();
  }
  document.body.dataset.lastEffect = name;
  window.dispatchEvent(new CustomEvent("chatkit.effect", { detail: { name, data } }));
}

/** @param {Message} message the entry of a stored user, assistant or widget message */
function storedMessage(message) {
  if (message.role === "user") return userMessage(message.content, message.attachments ?? []);
  if (message.role === "widget") return widgetMessage(message.id, message.widget, message.content);
  return assistantMessage(message.content);
}

/** @param {Message[]} messages */
function appendMessages(messages) {
  for (const message of messages) {
    if (message.role !== "tool") {
      ui.messages.append(storedMessage(message));
      continue;
    }
    const workflow = turnWorkflow((block) => ui.messages.append(block));
    for (const call of message.tool_calls ?? []) addToolTask(workflow, call, call.error ? "failed" : "done");
  }
  updateEmptyState();
}

function startNewChat() {
  state.streaming?.abort();
  state.viewGeneration += 1;
  state.activeId = null;
  state.messageCursor = null;
  state.loadingMessages = false;
  ui.messages.replaceChildren();
  ui.moreMessages.hidden = true;
  ui.chatTitle.textContent = "New chat";
  ui.chatStatus.textContent = "";
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  markActive();
  updateEmptyState();
}

/** @param {string} id */
async function openConversation(id) {
  if (id === state.activeId && !state.loadingMessages) return;
  state.streaming?.abort();
  clearError();
  state.viewGeneration += 1;
  const generation = state.viewGeneration;
  state.activeId = id;
  state.messageCursor = null;
  state.loadingMessages = true;
  ui.messages.replaceChildren();
  ui.moreMessages.hidden = true;
  ui.chatTitle.textContent = titleOf(state.conversations.get(id) ?? { id, title: null, created_at: "", updated_at: "" });
  ui.chatStatus.textContent = "Loading…";
  markActive();
  updateEmptyState();
  try {
    const conversation = await state.api.getConversation(id, MESSAGES_PAGE);
    if (generation !== state.viewGeneration) return;
    ui.chatTitle.textContent = titleOf(conversation);
    appendMessages(conversation.messages);
    state.messageCursor = conversation.next_cursor;
    ui.chatStatus.textContent = "";
  } catch (error) {
    if (generation !== state.viewGeneration) return;
    ui.chatStatus.textContent = "";
    showError(describe(error));
    if (error instanceof ApiError && error.status === 404) startNewChat();
  } finally {
    if (generation === state.viewGeneration) {
      state.loadingMessages = false;
      ui.moreMessages.hidden = !state.messageCursor;
      updateEmptyState();
      fillMessageScroller();
    }
  }
}

/** The next page of the open conversation's messages (they are read oldest first). */
async function loadMoreMessages() {
  if (state.loadingMessages || !state.messageCursor || !state.activeId) return;
  const generation = state.viewGeneration;
  state.loadingMessages = true;
  try {
    const page = await state.api.listMessages(state.activeId, state.messageCursor, MESSAGES_PAGE);
    if (generation !== state.viewGeneration) return;
    appendMessages(page.messages);
    state.messageCursor = page.next_cursor;
  } catch (error) {
    if (generation === state.viewGeneration) showError(describe(error));
  } finally {
    if (generation === state.viewGeneration) {
      state.loadingMessages = false;
      ui.moreMessages.hidden = !state.messageCursor;
      fillMessageScroller();
    }
  }
}

function fillMessageScroller() {
  if (!state.messageCursor) return;
  const scroller = ui.messageScroller.getBoundingClientRect();
  if (ui.moreMessages.getBoundingClientRect().top < scroller.bottom + 100) void loadMoreMessages();
}

/** Before a new turn is appended, every older page must be on screen (they come first). */
async function loadAllMessages() {
  while (state.messageCursor && state.activeId) {
    const before = state.messageCursor;
    await loadMoreMessages();
    if (state.messageCursor === before) break; // failed or superseded
  }
}

// --- one chat turn -----------------------------------------------------------------------------

/** Puts the events of one streamed answer on screen, in the order they arrive. */
class TurnView {
  constructor() {
    /** @type {HTMLElement | null} the assistant bubble text goes into */
    this.text = null;
    /** @type {HTMLElement | null} */
    this.lastAssistant = null;
    this.pending = el("li", { class: "message assistant pending", "aria-label": "Assistant is thinking" }, [
      el("span", { class: "avatar", "aria-hidden": "true" }, ["AI"]),
      el("div", { class: "bubble typing" }, [el("span"), el("span"), el("span")]),
    ]);
    ui.messages.append(this.pending);
    updateEmptyState();
  }

  /** @param {HTMLElement} element */
  add(element) {
    const follow = nearBottom();
    ui.messages.insertBefore(element, this.pending.isConnected ? this.pending : null);
    if (follow) scrollToBottom();
  }

  /** @param {ChatEvent} event */
  apply(event) {
    switch (event.type) {
      case "thinking":
        ui.chatStatus.textContent = event.content || "Thinking…";
        break;
      case "text":
        this.appendText(event.content);
        break;
      case "tool_call":
        this.text = null;
        ui.chatStatus.textContent = `Calling ${event.name}…`;
        addToolTask(turnWorkflow((block) => this.add(block)), { id: event.call_id, ...event }, "running");
        break;
      case "tool_result":
        this.toolResult(event);
        break;
      case "widget":
        this.text = null;
        this.add(widgetMessage(event.item_id, event.widget, event.copy_text ?? ""));
        break;
      case "error":
        this.fail(event.message);
        break;
    }
  }

  /** @param {string} content */
  appendText(content) {
    if (!this.text) {
      if (!content.trim()) return; // the separator between two messages of one turn
      content = content.trimStart();
      const message = assistantMessage("", "streaming");
      message.setAttribute("aria-busy", "true");
      this.add(message);
      this.lastAssistant = message;
      this.text = /** @type {HTMLElement} */ (message.querySelector(".bubble"));
      ui.chatStatus.textContent = "Answering…";
    }
    const follow = nearBottom();
    this.text.textContent += content;
    if (follow) scrollToBottom();
  }

  /** @param {{ call_id: string, name: string, output?: unknown, error?: string }} event */
  toolResult(event) {
    const workflow = turnWorkflow((block) => this.add(block));
    const status = event.error ? "failed" : "done";
    const row = /** @type {HTMLElement | null} */ (
      workflow.querySelector(`.tool-task[data-call-id="${CSS.escape(event.call_id)}"]`)
    );
    if (row) settleToolTask(workflow, row, event, status);
    else addToolTask(workflow, { id: event.call_id, arguments: {}, ...event }, status);
    ui.chatStatus.textContent = "Thinking…";
  }

  /** @param {string} message */
  fail(message) {
    this.add(el("li", { class: "message error-note" }, [message]));
    showError(message);
  }

  /** @param {"done" | "stopped" | "failed"} outcome */
  finish(outcome) {
    this.pending.remove();
    for (const message of ui.messages.querySelectorAll('.message.assistant[data-state="streaming"]')) {
      message.setAttribute("data-state", outcome === "stopped" ? "stopped" : "done");
      message.removeAttribute("aria-busy");
    }
    if (outcome === "stopped") {
      this.add(el("li", { class: "message note" }, ["Stopped. The partial answer is kept."]));
    }
    ui.chatStatus.textContent = outcome === "stopped" ? "Stopped" : "";
    updateEmptyState();
  }
}

/** @param {boolean} running */
function setStreaming(running) {
  ui.send.disabled = running;
  ui.stop.disabled = !running;
  ui.composer.setAttribute("aria-busy", String(running));
}

/** @param {string} text */
async function sendMessage(text) {
  if (state.streaming || !text.trim()) return;
  if (composerAttachments.uploading) {
    showError("Wait for the attachments to finish uploading.");
    return;
  }
  const attachments = composerAttachments.ready();
  clearError();
  const controller = new AbortController();
  state.streaming = controller;
  setStreaming(true);
  const generation = state.viewGeneration;
  const threadId = state.activeId;
  ui.input.value = "";
  autoGrow();
  ui.input.focus();
  try {
    await loadAllMessages();
    const user = userMessage(text, attachments);
    ui.messages.append(user);
    scrollToBottom();
    const view = new TurnView();
    scrollToBottom();
    let outcome = /** @type {"done" | "stopped" | "failed"} */ ("done");
    let newThread = null;
    try {
      const ids = attachments.map((attachment) => attachment.id);
      const { threadId: answered, events } = await state.api.chat(
        text,
        threadId,
        controller.signal,
        ids,
        ui.modelPicker.value,
      );
      composerAttachments.clear();
      newThread = threadId ? null : answered;
      if (newThread && generation === state.viewGeneration) adoptThread(newThread);
      for await (const event of events) {
        if (event.type === "thinking" && event.thread_id && !threadId && !newThread) {
          newThread = event.thread_id;
          if (generation === state.viewGeneration) adoptThread(newThread);
        }
        view.apply(event);
        if (event.type === "error") outcome = "failed";
      }
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") outcome = "stopped";
      else {
        outcome = "failed";
        if (error instanceof ApiError && error.status > 0 && !newThread && !view.lastAssistant) {
          // refused before anything started: nothing was stored, give the text back
          user.remove();
          if (!ui.input.value) ui.input.value = text;
          autoGrow();
        }
        showError(describe(error));
      }
    }
    view.finish(outcome);
    if (newThread || threadId) void refreshAfterTurn();
  } finally {
    state.streaming = null;
    setStreaming(false);
    if (document.activeElement === document.body || document.activeElement === ui.stop) ui.input.focus();
  }
}

/** A new conversation got its id: it is the open one from now on (and in the address). */
/** @param {string} id */
function adoptThread(id) {
  state.activeId = id;
  history.replaceState(null, "", `${location.pathname}${location.search}#c=${encodeURIComponent(id)}`);
}

/** The turn moved its conversation to the top (and may have titled it): reload the list. */
async function refreshAfterTurn() {
  await reloadConversations();
  markActive();
  const active = state.activeId ? state.conversations.get(state.activeId) : undefined;
  if (active) ui.chatTitle.textContent = titleOf(active);
}

// --- composer ----------------------------------------------------------------------------------

function autoGrow() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
}

function routeFromHash() {
  const match = /^#c=(.+)$/.exec(location.hash);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id && id !== state.activeId) void openConversation(id);
  else if (!id && state.activeId && !state.streaming) startNewChat();
}

function closeSidebarOnNarrow() {
  if (ui.sidebar.classList.contains("open")) {
    ui.sidebar.classList.remove("open");
    ui.sidebarToggle.setAttribute("aria-expanded", "false");
  }
}

function wire() {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    void sendMessage(ui.input.value);
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void sendMessage(ui.input.value);
    }
  });
  ui.input.addEventListener("input", autoGrow);
  ui.stop.addEventListener("click", () => {
    state.streaming?.abort();
    ui.input.focus();
  });
  ui.newChat.addEventListener("click", () => {
    startNewChat();
    closeSidebarOnNarrow();
    ui.input.focus();
  });
  ui.conversationList.addEventListener("click", (event) => {
    const link = /** @type {HTMLElement} */ (event.target).closest?.(".conversation-link");
    if (link) closeSidebarOnNarrow();
  });
  ui.moreConversations.addEventListener("click", () => void loadMoreConversations());
  ui.moreMessages.addEventListener("click", () => void loadMoreMessages());
  ui.conversationScroller.addEventListener("scroll", fillConversationScroller, { passive: true });
  ui.messageScroller.addEventListener("scroll", fillMessageScroller, { passive: true });
  ui.dismissError.addEventListener("click", clearError);
  ui.sidebarToggle.addEventListener("click", () => {
    const open = ui.sidebar.classList.toggle("open");
    ui.sidebarToggle.setAttribute("aria-expanded", String(open));
  });
  ui.openSettings.addEventListener("click", openSettings);
  ui.cancelSettings.addEventListener("click", () => ui.settingsDialog.close());
  ui.resetSettings.addEventListener("click", () => {
    const defaults = defaultSettings();
    ui.chatUrl.value = defaults.chatUrl;
    ui.conversationsUrl.value = defaults.conversationsUrl;
  });
  ui.settingsForm.addEventListener("submit", applySettings);
  window.addEventListener("hashchange", routeFromHash);
}


const composerAttachments = new ComposerAttachments({
  api: () => state.api,
  tray: byId("attachment-tray"),
  onError: showError,
  onChange: () => {},
});
composerAttachments.wire(
  /** @type {HTMLButtonElement} */ (byId("attach")),
  /** @type {HTMLInputElement} */ (byId("attach-files")),
  ui.input,
  ui.composer,
);

/** The model picker, from what the chat function offers (MODEL_CHOICES). */
async function loadModels() {
  try {
    const { models } = await state.api.composer();
    ui.modelPicker.replaceChildren(
      ...models.map((model) => new Option(model.label, model.id, model.default, model.default)),
    );
  } catch {
    ui.modelPicker.replaceChildren(); // the server's default model answers
  }
  ui.modelPicker.hidden = ui.modelPicker.options.length === 0;
}

wire();
showEndpoint();
void loadModels();
setStreaming(false);
updateEmptyState();
routeFromHash();
void reloadConversations();
ui.input.focus();

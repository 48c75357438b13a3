import { ChatKit, useChatKit } from "@openai/chatkit-react";
import { useCallback, useEffect, useMemo, useState } from "react";

import { authFetch } from "./authFetch";
import { type ComposerChoices, fetchComposerChoices } from "./composer";
import { readConfig } from "./config";
import { type Conversation, ConversationsClient } from "./conversations";

const config = readConfig();

/** The backend's defaults (MAX_ATTACHMENT_BYTES, ATTACHMENT_TYPES, 10 per message): the server
 * refuses anything else anyway, this only keeps the picker from offering it. */
const ATTACHMENTS = {
  enabled: true,
  maxSize: 10 * 1024 * 1024,
  maxCount: 10,
  accept: {
    "image/*": [".png", ".jpg", ".jpeg", ".webp", ".gif"],
    "application/pdf": [".pdf"],
    "text/plain": [".txt"],
    "text/markdown": [".md"],
    "text/csv": [".csv"],
    "application/json": [".json"],
  },
};

/**
 * The client tools this page implements, by name (the backend's `CLIENT_TOOLS` declares them to
 * the model; see docs/widgets.md). What a handler returns continues the assistant's turn.
 */
const clientTools: Record<string, (params: Record<string, unknown>) => Record<string, unknown>> = {
  get_time_zone: () => ({ time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone }),
};

/** The conversation list (REST API) next to the official ChatKit component (ChatKit protocol). */
export function App() {
  const conversations = useMemo(() => new ConversationsClient(config.conversationsUrl), []);
  const [items, setItems] = useState<Conversation[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [activeId, setActiveId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tasksNote, setTasksNote] = useState<string | null>(null);
  const [choices, setChoices] = useState<ComposerChoices>({ models: [], tools: [] });

  useEffect(() => {
    fetchComposerChoices(config.chatUrl).then(setChoices, (failure) => setError(String(failure)));
  }, []);

  const reload = useCallback(async () => {
    try {
      const page = await conversations.list();
      setItems(page.conversations);
      setCursor(page.next_cursor);
      setError(null);
    } catch (failure) {
      setError(String(failure));
    }
  }, [conversations]);

  const loadMore = useCallback(async () => {
    if (!cursor) return;
    try {
      const page = await conversations.list(cursor);
      setItems((current) => [...current, ...page.conversations]);
      setCursor(page.next_cursor);
    } catch (failure) {
      setError(String(failure));
    }
  }, [conversations, cursor]);

  const chatkit = useChatKit({
    api: {
      url: `${config.chatUrl}chatkit`,
      domainKey: config.domainKey,
      fetch: authFetch,
      // attachments.create answers with a signed upload (S3, or the dev server's own route);
      // the component PUTs the bytes there, with no bearer token.
      uploadStrategy: { type: "two_phase" },
    },
    // The pickers offer what the server accepts; dictation goes to input.transcribe.
    composer: {
      attachments: ATTACHMENTS,
      models: choices.models.length > 0 ? choices.models : undefined,
      tools: choices.tools.length > 0 ? choices.tools : undefined,
      dictation: { enabled: true },
    },
    initialThread: null,
    history: { enabled: false },
    onThreadChange: ({ threadId }) => setActiveId(threadId),
    onResponseEnd: () => void reload(),
    onError: ({ error: failure }) => setError(failure.message),
    // A tool or a widget button changed the user's tasks: a page with its own task views would
    // refresh them here; this one notes what changed.
    onEffect: ({ name, data }) => {
      if (name !== "tasks.changed") return;
      const ids = Array.isArray(data?.task_ids) ? data.task_ids.map((id) => `#${String(id)}`) : [];
      setTasksNote(`Tasks ${ids.join(", ")} ${String(data?.change ?? "changed")}`);
    },
    onClientTool: async ({ name, params }) => {
      const tool = clientTools[name];
      if (!tool) throw new Error(`No client tool named ${name}`);
      return tool(params);
    },
  });

  useEffect(() => {
    void reload();
  }, [reload]);

  const open = (id: string | null) => {
    setActiveId(id);
    void chatkit.setThreadId(id);
  };

  const remove = async (conversation: Conversation) => {
    if (!window.confirm(`Delete “${conversation.title ?? "Untitled"}”?`)) return;
    try {
      await conversations.remove(conversation.id);
      if (conversation.id === activeId) open(null);
      await reload();
    } catch (failure) {
      setError(String(failure));
    }
  };

  return (
    <div style={{ display: "grid", gridTemplateColumns: "260px 1fr", height: "100vh" }}>
      <nav aria-label="Conversations" style={{ borderRight: "1px solid #ddd", padding: 12, overflowY: "auto" }}>
        <button type="button" onClick={() => open(null)}>
          New chat
        </button>
        {error && <p role="alert">{error}</p>}
        {tasksNote && <p role="status">{tasksNote}</p>}
        <ul style={{ listStyle: "none", padding: 0 }}>
          {items.map((conversation) => (
            <li key={conversation.id} style={{ display: "flex", gap: 4 }}>
              <button
                type="button"
                aria-current={conversation.id === activeId ? "page" : undefined}
                onClick={() => open(conversation.id)}
                style={{ flex: 1, textAlign: "left" }}
              >
                {conversation.title ?? "Untitled"}
              </button>
              <button type="button" aria-label={`Delete ${conversation.title ?? "Untitled"}`} onClick={() => void remove(conversation)}>
                ×
              </button>
            </li>
          ))}
        </ul>
        {cursor && (
          <button type="button" onClick={() => void loadMore()}>
            Load more
          </button>
        )}
      </nav>
      <ChatKit control={chatkit.control} style={{ height: "100%", width: "100%" }} />
    </div>
  );
}

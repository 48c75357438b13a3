// The REST conversations API (`<conversations function URL>api/conversations`), typed after the
// backend's OpenAPI document (`/openapi.json`).

import { authFetch } from "./authFetch";

export type Conversation = {
  id: string;
  title: string | null;
  created_at: string;
  updated_at: string;
};

export type ConversationPage = {
  conversations: Conversation[];
  next_cursor: string | null;
};

export class ConversationsClient {
  constructor(private readonly baseUrl: string) {}

  /** One page, most recently updated first; pass the previous page's `next_cursor` for the next. */
  async list(after: string | null = null, limit = 20): Promise<ConversationPage> {
    const query = new URLSearchParams({ limit: String(limit) });
    if (after) query.set("after", after);
    return this.request<ConversationPage>("GET", `?${query}`);
  }

  async rename(id: string, title: string): Promise<Conversation> {
    return this.request<Conversation>("PATCH", `/${encodeURIComponent(id)}`, { title });
  }

  async remove(id: string): Promise<void> {
    await this.request<unknown>("DELETE", `/${encodeURIComponent(id)}`);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await authFetch(`${this.baseUrl}api/conversations${path}`, {
      method,
      headers: body === undefined ? undefined : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      const detail = await response
        .json()
        .then((data: { detail?: unknown }) => String(data.detail ?? response.statusText))
        .catch(() => response.statusText);
      throw new Error(`${response.status}: ${detail}`);
    }
    return (await response.json()) as T;
  }
}

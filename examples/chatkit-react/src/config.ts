// Where the backend is, from Vite's environment (`.env.local` or the shell): see README.md.

export type BackendConfig = {
  /** The chat function URL (ends in "/"); ChatKit posts to `${chatUrl}chatkit`. */
  chatUrl: string;
  /** The conversations function URL (ends in "/"); the list reads `${conversationsUrl}api/conversations`. */
  conversationsUrl: string;
  /** The domain key registered with OpenAI for this page's domain ("local-dev" works on localhost). */
  domainKey: string;
};

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

export function readConfig(env: ImportMetaEnv = import.meta.env): BackendConfig {
  const chatUrl = env.VITE_CHAT_URL ?? "http://127.0.0.1:8000/";
  return {
    chatUrl: withSlash(chatUrl),
    conversationsUrl: withSlash(env.VITE_CONVERSATIONS_URL ?? chatUrl),
    domainKey: env.VITE_CHATKIT_DOMAIN_KEY ?? "local-dev",
  };
}

/**
 * The bearer token for this user. A real app asks its identity provider (and refreshes it);
 * this example reads a token pasted into VITE_TOKEN, or none for `make dev` without JWT settings.
 */
export async function getAccessToken(): Promise<string | null> {
  return import.meta.env.VITE_TOKEN || null;
}

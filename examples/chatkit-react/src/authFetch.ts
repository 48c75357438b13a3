import { getAccessToken } from "./config";

/**
 * `fetch` with `Authorization: Bearer <token>` added: what ChatKit's custom backend config
 * (`api.fetch`) and the conversation list both use, so every request carries the user's token.
 */
export const authFetch: typeof fetch = async (input, init) => {
  const token = await getAccessToken();
  const headers = new Headers(init?.headers);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

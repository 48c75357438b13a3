// The composer's pickers, from the chat function's `GET /api/composer` (docs/composer.md): the
// models of MODEL_CHOICES and the ids of the agent's tools. The server refuses anything else.

import type { ModelOption, ToolOption } from "@openai/chatkit";

import { authFetch } from "./authFetch";

export type ComposerChoices = { models: ModelOption[]; tools: ToolOption[] };

type Offered = { models: { id: string; label: string; default: boolean }[]; tools: string[] };

export async function fetchComposerChoices(chatUrl: string): Promise<ComposerChoices> {
  const response = await authFetch(`${chatUrl}api/composer`);
  if (!response.ok) throw new Error(`GET api/composer: ${response.status}`);
  const offered = (await response.json()) as Offered;
  return {
    models: offered.models.map(({ id, label, default: isDefault }) => ({ id, label, default: isDefault })),
    tools: offered.tools.map((id) => ({ id, label: id.replaceAll("_", " "), icon: "bolt" })),
  };
}

/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_CHAT_URL?: string;
  readonly VITE_CONVERSATIONS_URL?: string;
  readonly VITE_CHATKIT_DOMAIN_KEY?: string;
  readonly VITE_TOKEN?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}

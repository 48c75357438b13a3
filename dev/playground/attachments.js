// Attachments in the playground: pick (button), paste or drop files; each one is created with
// ChatKit's `attachments.create`, uploaded with the method, URL and headers the server answered
// (a signed PUT: to S3, or to the dev server's own route) with progress, and sent with the message
// by id. Sent messages show image thumbnails and file chips, as do reloaded conversations (their
// REST messages carry `attachments` with signed preview URLs).
//
// Kept apart from app.js: app.js only asks for the ready ids, clears the tray after a send, and
// renders `attachmentList(...)` inside a user message.

import { ApiError } from "./api.js";

/**
 * @typedef {{ id: string, name: string, mime_type: string, size: number, preview_url?: string }} SentAttachment
 * @typedef {{ file: File, id: string | null, status: "uploading" | "ready" | "failed", progress: number,
 *   preview: string | null, chip: HTMLElement, bar: HTMLElement }} Pending
 */

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

/** @param {number} size */
export function sizeText(size) {
  if (size < 1000) return `${size} B`;
  if (size < 1_000_000) return `${(size / 1000).toFixed(1)} kB`;
  return `${(size / 1_000_000).toFixed(1)} MB`;
}

/**
 * Thumbnails (images) and chips (files) of a sent message's attachments.
 * @param {SentAttachment[]} attachments
 */
export function attachmentList(attachments) {
  const list = el("ul", { class: "attachments", "aria-label": "Attachments" });
  for (const attachment of attachments) {
    const label = `${attachment.name} (${attachment.mime_type}, ${sizeText(attachment.size)})`;
    if (attachment.preview_url && attachment.mime_type.startsWith("image/")) {
      const image = el("img", { class: "thumbnail", src: attachment.preview_url, alt: attachment.name });
      list.append(el("li", { class: "attachment image", title: label }, [image]));
    } else {
      list.append(el("li", { class: "attachment file", title: label }, [
        el("span", { class: "file-name" }, [attachment.name]),
        el("span", { class: "file-size" }, [sizeText(attachment.size)]),
      ]));
    }
  }
  return list;
}

/**
 * Upload bytes as the server's descriptor says, reporting progress (0..1). No Authorization
 * header: the URL itself is signed, and the token must never go to the bucket.
 * @param {{ url: string, method: string, headers?: Record<string, string> }} descriptor
 * @param {File} file
 * @param {(fraction: number) => void} onProgress
 * @returns {Promise<void>}
 */
function uploadBytes(descriptor, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(descriptor.method, descriptor.url);
    for (const [name, value] of Object.entries(descriptor.headers ?? {})) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else {
        let detail = request.statusText || `HTTP ${request.status}`;
        try {
          detail = JSON.parse(request.responseText).detail ?? detail;
        } catch {
          // S3 answers XML: keep the status text
        }
        reject(new ApiError(request.status, `Upload of ${file.name} failed: ${detail}`));
      }
    });
    request.addEventListener("error", () => reject(new ApiError(0, `Upload of ${file.name} failed (network or CORS)`)));
    request.send(file);
  });
}

/** The composer's tray of files being attached to the next message. */
export class ComposerAttachments {
  /**
   * @param {{ api: () => import("./api.js").Api, tray: HTMLElement, onError: (text: string) => void,
   *   onChange: () => void }} options
   */
  constructor({ api, tray, onError, onChange }) {
    this.api = api;
    this.tray = tray;
    this.onError = onError;
    this.onChange = onChange;
    /** @type {Pending[]} */
    this.items = [];
  }

  /** Wire the attach button, paste on the message box and drop on the composer. */
  wire(/** @type {HTMLButtonElement} */ button, /** @type {HTMLInputElement} */ picker, /** @type {HTMLElement} */ input, /** @type {HTMLElement} */ dropZone) {
    button.addEventListener("click", () => picker.click());
    picker.addEventListener("change", () => {
      this.add([...(picker.files ?? [])]);
      picker.value = "";
    });
    input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.add(files);
      }
    });
    dropZone.addEventListener("dragover", (event) => {
      if (event.dataTransfer?.types.includes("Files")) {
        event.preventDefault();
        dropZone.classList.add("dropping");
      }
    });
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dropping"));
    dropZone.addEventListener("drop", (event) => {
      dropZone.classList.remove("dropping");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.add(files);
      }
    });
  }

  /** @param {File[]} files */
  add(files) {
    for (const file of files) void this.#upload(file);
  }

  get uploading() {
    return this.items.some((item) => item.status === "uploading");
  }

  /** @returns {SentAttachment[]} the uploaded attachments, with local previews for images */
  ready() {
    return this.items
      .filter((item) => item.status === "ready" && item.id)
      .map((item) => ({
        id: /** @type {string} */ (item.id),
        name: item.file.name,
        mime_type: item.file.type,
        size: item.file.size,
        preview_url: item.preview ?? undefined,
      }));
  }

  /** Empty the tray after a send (the sent message keeps its own thumbnails). */
  clear() {
    this.items = [];
    this.tray.replaceChildren();
    this.tray.hidden = true;
    this.onChange();
  }

  /** @param {File} file */
  async #upload(file) {
    const bar = el("span", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "aria-label": `Uploading ${file.name}` });
    const remove = el("button", { type: "button", class: "icon-button remove-attachment", "aria-label": `Remove ${file.name}` }, ["×"]);
    const preview = file.type.startsWith("image/") ? URL.createObjectURL(file) : null;
    const chip = el("li", { class: "attachment pending", "data-status": "uploading", title: file.name }, [
      preview ? el("img", { class: "thumbnail", src: preview, alt: file.name }) : el("span", { class: "file-name" }, [file.name]),
      bar,
      remove,
    ]);
    /** @type {Pending} */
    const item = { file, id: null, status: "uploading", progress: 0, preview, chip, bar };
    this.items.push(item);
    this.tray.append(chip);
    this.tray.hidden = false;
    remove.addEventListener("click", () => void this.#remove(item));
    this.onChange();
    try {
      const created = await this.api().createAttachment(file.name, file.size, file.type || "application/octet-stream");
      item.id = created.id;
      await uploadBytes(created.upload_descriptor, file, (fraction) => {
        item.progress = fraction;
        bar.style.setProperty("--progress", `${Math.round(fraction * 100)}%`);
        bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
      });
      item.status = "ready";
      chip.dataset.status = "ready";
      bar.setAttribute("aria-valuenow", "100");
    } catch (error) {
      item.status = "failed";
      this.items = this.items.filter((other) => other !== item);
      chip.remove();
      if (!this.items.length) this.tray.hidden = true;
      this.onError(error instanceof Error ? `${file.name}: ${error.message}` : String(error));
    }
    this.onChange();
  }

  /** @param {Pending} item */
  async #remove(item) {
    this.items = this.items.filter((other) => other !== item);
    item.chip.remove();
    if (!this.items.length) this.tray.hidden = true;
    this.onChange();
    if (item.id) {
      try {
        await this.api().deleteAttachment(item.id);
      } catch {
        // never sent: the server expires it anyway
      }
    }
  }
}

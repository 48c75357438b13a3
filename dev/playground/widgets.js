// ChatKit widgets as plain DOM: the components this backend emits (Card, ListView, ListViewItem,
// Row, Col, Box, Title, Text, Caption, Markdown as text, Badge, Button, Checkbox, Divider,
// Spacer, Icon) and a readable fallback for any other. Values only ever go in as textContent.
//
// A component with an action (a button's onClickAction, a checkbox's onChangeAction) calls
// `onAction(action)`; the caller sends it to the server with the ChatKit protocol and puts the
// updated widget in place with `renderWidget` again.

/**
 * @typedef {{ type: string, payload?: Record<string, unknown>, streaming?: boolean }} WidgetAction
 * @typedef {{ type: string, key?: string, children?: unknown, [prop: string]: unknown }} Component
 */

const GAP_UNIT_PX = 4;

/**
 * @param {Component} root
 * @param {(action: WidgetAction) => void} onAction
 * @returns {HTMLElement}
 */
export function renderWidget(root, onAction) {
  return render(root, onAction);
}

/**
 * @param {Component} component
 * @param {(action: WidgetAction) => void} onAction
 * @returns {HTMLElement}
 */
function render(component, onAction) {
  const node = build(component, onAction);
  node.classList.add("w", `w-${component.type}`);
  if (typeof component.key === "string") node.dataset.key = component.key;
  return node;
}

/** @param {unknown} children */
function childList(children) {
  if (Array.isArray(children)) return /** @type {Component[]} */ (children);
  return children && typeof children === "object" ? [/** @type {Component} */ (children)] : [];
}

/**
 * @param {Component} c
 * @param {(action: WidgetAction) => void} onAction
 * @returns {HTMLElement}
 */
function build(c, onAction) {
  const text = (/** @type {string} */ tag, /** @type {unknown} */ value) => {
    const node = document.createElement(tag);
    node.textContent = typeof value === "string" ? value : "";
    return node;
  };
  switch (c.type) {
    case "Card":
    case "ListView":
    case "Basic":
    case "ListViewItem":
    case "Row":
    case "Col":
    case "Box":
    case "Form": {
      const node = document.createElement("div");
      for (const child of childList(c.children)) node.append(render(child, onAction));
      if (typeof c.gap === "number") node.style.gap = `${c.gap * GAP_UNIT_PX}px`;
      if (typeof c.flex === "number" || typeof c.flex === "string") node.style.flex = String(c.flex);
      if (typeof c.align === "string") node.style.alignItems = c.align === "start" || c.align === "end" ? `flex-${c.align}` : c.align;
      if (c.type === "ListViewItem" && c.onClickAction) clickable(node, /** @type {WidgetAction} */ (c.onClickAction), onAction);
      return node;
    }
    case "Title":
      return text("h3", c.value);
    case "Text":
    case "Markdown": {
      const node = text(c.type === "Markdown" ? "div" : "span", c.value);
      if (c.lineThrough) node.classList.add("w-done");
      if (typeof c.weight === "string") node.dataset.weight = c.weight;
      if (typeof c.color === "string") node.dataset.color = c.color;
      return node;
    }
    case "Caption":
      return text("small", c.value);
    case "Badge": {
      const node = text("span", c.label);
      if (typeof c.color === "string") node.dataset.color = c.color;
      return node;
    }
    case "Button": {
      const node = /** @type {HTMLButtonElement} */ (text("button", c.label));
      node.type = "button";
      node.className = c.color === "danger" ? "button danger" : "button secondary";
      if (typeof c.color === "string") node.dataset.color = c.color;
      if (typeof c.variant === "string") node.dataset.variant = c.variant;
      if (c.disabled) node.disabled = true;
      if (c.onClickAction) clickable(node, /** @type {WidgetAction} */ (c.onClickAction), onAction);
      return node;
    }
    case "Checkbox": {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = typeof c.name === "string" ? c.name : "";
      box.checked = Boolean(c.defaultChecked);
      box.disabled = Boolean(c.disabled);
      if (typeof c.label === "string") label.append(box, c.label);
      else {
        box.setAttribute("aria-label", "Done");
        label.append(box);
      }
      const action = /** @type {WidgetAction | undefined} */ (c.onChangeAction);
      if (action) box.addEventListener("change", () => onAction(action));
      return label;
    }
    case "Divider":
      return document.createElement("hr");
    case "Spacer":
      return document.createElement("span");
    case "Icon":
      return text("span", "");
    default: {
      // Unknown to this renderer: say what it is and show its text-like props.
      const node = text("span", [c.type, c.value ?? c.label ?? ""].filter(Boolean).join(": "));
      node.dataset.unknown = "true";
      return node;
    }
  }
}

/**
 * @param {HTMLElement} node
 * @param {WidgetAction} action
 * @param {(action: WidgetAction) => void} onAction
 */
function clickable(node, action, onAction) {
  node.addEventListener("click", (event) => {
    event.stopPropagation();
    onAction(action);
  });
}

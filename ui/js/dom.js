// The few DOM helpers every view uses.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element with a class and text. */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * A `<button type="button">` that calls `onClick`; `action` (if any) goes to `data-action`,
 * `label` to `aria-label`.
 */
export function button(action, cls, onClick, { text, label } = {}) {
  const b = el('button', cls, text);
  b.type = 'button';
  if (action) b.dataset.action = action;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

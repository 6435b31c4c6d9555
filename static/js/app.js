// Small behaviours shared by every page. Pages keep no inline script (CSP).
document.addEventListener("click", (event) => {
  // Close an open dropdown when clicking elsewhere.
  document.querySelectorAll("details.dropdown[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
  const confirmTarget = event.target.closest("[data-confirm]");
  if (confirmTarget && !window.confirm(confirmTarget.dataset.confirm)) {
    event.preventDefault();
  }
});
// Copy buttons: data-copy names the element whose value (or text) goes to the clipboard.
function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // Plain http on another host has no clipboard API: the old way, through a selected text area.
  return new Promise((resolve, reject) => {
    const buffer = document.createElement("textarea");
    buffer.value = text;
    buffer.setAttribute("readonly", "");
    buffer.className = "copy-buffer";
    document.body.appendChild(buffer);
    buffer.select();
    const copied = document.execCommand("copy");
    buffer.remove();
    if (copied) resolve();
    else reject(new Error("copy refused"));
  });
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.matches("input, textarea") ? source.value : source.innerText.trim();
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  const show = (message) => {
    button.textContent = message;
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(() => { button.textContent = label; }, 2000);
  };
  copyText(text).then(
    () => show("Copied"),
    () => {
      // Leave it selected for Ctrl+C / Cmd+C.
      if (source.select) source.select();
      show("Press Ctrl+C");
    },
  );
});
// The site menu on small screens: the menu button opens and closes it.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-menu-toggle]");
  if (!toggle) return;
  const header = toggle.closest("[data-site-header]");
  const open = header.classList.toggle("menu-open");
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
});

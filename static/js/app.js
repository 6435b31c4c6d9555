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
// A short name (slug) filled in from another field, e.g. data-slug-from="id_name", until it is edited by hand.
function slugify(text) {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50)
    .replace(/-+$/, "");
}
document.querySelectorAll("[data-slug-from]").forEach((slug) => {
  const source = document.getElementById(slug.dataset.slugFrom);
  if (!source) return;
  // A value the page came back with (after an error) counts as edited unless it is what the name gives.
  let edited = slug.value !== "" && slug.value !== slugify(source.value);
  slug.addEventListener("input", () => {
    edited = slug.value !== "";
  });
  source.addEventListener("input", () => {
    if (!edited) slug.value = slugify(source.value);
  });
});
// The colour scheme switch in the user menu: applied at once, kept on the account.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("[data-color-scheme-form]");
  if (!form || !event.submitter || !window.fetch) return;
  event.preventDefault();
  const scheme = event.submitter.value;
  const data = new FormData(form);
  data.set("color_scheme", scheme);
  fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((response) => {
      if (!response.ok) throw new Error(`status ${response.status}`);
      if (scheme === "system") document.documentElement.removeAttribute("data-theme");
      else document.documentElement.setAttribute("data-theme", scheme);
      form.querySelectorAll("button[name=color_scheme]").forEach((button) => {
        button.setAttribute("aria-pressed", button.value === scheme ? "true" : "false");
      });
    })
    .catch(() => {
      // Let the page do it the plain way: post and come back.
      const field = document.createElement("input");
      field.type = "hidden";
      field.name = "color_scheme";
      field.value = scheme;
      form.appendChild(field);
      form.submit();
    });
});

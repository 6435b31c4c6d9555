// Edit page: the document checklist only matters when "all documents" is off.
(function () {
  const toggle = document.getElementById("id_all_documents");
  const list = document.getElementById("id_documents");
  if (!toggle || !list) return;
  list.setAttribute("role", "group");
  list.setAttribute("aria-label", "Documents");
  const field = list.closest("div") || list;
  function sync() {
    field.classList.toggle("is-disabled", toggle.checked);
    list.querySelectorAll("input").forEach((input) => (input.disabled = toggle.checked));
    // With every box disabled, the list itself takes focus so a long one can still be scrolled.
    if (toggle.checked) list.tabIndex = 0;
    else list.removeAttribute("tabindex");
  }
  toggle.addEventListener("change", sync);
  sync();
})();

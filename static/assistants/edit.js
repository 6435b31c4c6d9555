// Edit page: the document checklist only matters when "all documents" is off.
(function () {
  const toggle = document.getElementById("id_all_documents");
  const list = document.getElementById("id_documents");
  if (!toggle || !list) return;
  const field = list.closest("div") || list;
  function sync() {
    field.classList.toggle("is-disabled", toggle.checked);
    list.querySelectorAll("input").forEach((input) => (input.disabled = toggle.checked));
  }
  toggle.addEventListener("change", sync);
  sync();
})();

// Document page: bring the passage named by ?chunk=<id> or #chunk-<id> into view.
(() => {
  const fromQuery = new URLSearchParams(window.location.search).get("chunk");
  const id = fromQuery ? `chunk-${fromQuery}` : window.location.hash.replace(/^#/, "");
  if (!id || !/^chunk-\d+$/.test(id)) return;
  const target = document.getElementById(id);
  if (!target) return;
  target.classList.add("chunk-selected");
  target.scrollIntoView({ block: "center" });
})();

// Upload page: drag and drop, one request per file with a progress bar, then
// the document's status until it is ready or failed. Without JavaScript the
// form posts all files at once.
(() => {
  const form = document.querySelector("[data-upload-form]");
  if (!form) return;
  document.documentElement.classList.add("js");
  const input = form.querySelector("[data-upload-input]");
  const zone = form.querySelector("[data-dropzone]");
  const queue = form.querySelector("[data-upload-queue]");
  const submit = form.querySelector("[data-upload-submit]");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  submit.hidden = true;

  const describe = (size) => (size >= 1048576 ? `${(size / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(size / 1024))} KB`);

  function row(file) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = `${file.name} (${describe(file.size)})`;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    const state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "Waiting…";
    item.append(name, bar, state);
    queue.append(item);
    return { item, bar, state };
  }

  function setState(view, text, kind, link) {
    view.state.textContent = text;
    if (link) {
      view.state.append(" ");
      const anchor = document.createElement("a");
      anchor.href = link;
      anchor.textContent = "Open";
      view.state.append(anchor);
    }
    view.item.classList.remove("upload-error", "upload-ready", "upload-pending");
    if (kind) view.item.classList.add(`upload-${kind}`);
  }

  function watch(view, doc) {
    const poll = () => {
      fetch(doc.status_url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((response) => response.json())
        .then((status) => {
          if (status.status === "ready") {
            view.bar.value = 100;
            const passages = `${status.chunk_count} passage${status.chunk_count === 1 ? "" : "s"} indexed.`;
            if (status.search_by_meaning === "pending") {
              const why = `Search by meaning is pending: ${status.embedding_error} It is retried; search by words works meanwhile.`;
              setState(view, `Ready: ${passages} ${why}`, "ready", doc.url);
              view.item.classList.add("upload-pending");
            } else {
              setState(view, `Ready: ${passages}`, "ready", doc.url);
            }
          } else if (status.status === "failed") {
            setState(view, `Failed: ${status.failure_reason}`, "error", doc.url);
          } else {
            view.bar.removeAttribute("value");
            const pages = status.pages_total ? ` ${status.pages_done} of ${status.pages_total}` : "";
            setState(view, status.status === "queued" ? "Queued…" : `Processing…${pages}`);
            window.setTimeout(poll, 1000);
          }
        })
        .catch(() => window.setTimeout(poll, 3000));
    };
    poll();
  }

  function send(file) {
    const view = row(file);
    const data = new FormData();
    data.append("files", file);
    const request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        view.bar.value = Math.round((100 * event.loaded) / event.total);
        setState(view, `Uploading… ${Math.round((100 * event.loaded) / event.total)}%`);
      }
    });
    request.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(request.responseText);
      } catch (error) {
        body = { detail: `The server answered ${request.status}.` };
      }
      const doc = (body.documents || [])[0];
      if (doc) {
        setState(view, "Uploaded; queued for processing…");
        watch(view, doc);
      } else {
        const error = (body.errors || [])[0] || {};
        view.bar.value = 0;
        setState(view, error.detail || body.detail || `Upload failed (${request.status}).`, "error", error.document && error.document.url);
      }
    });
    request.addEventListener("error", () => setState(view, "The connection was lost; try again.", "error"));
    request.send(data);
  }

  function sendAll(files) {
    Array.from(files).forEach(send);
    input.value = "";
  }

  input.addEventListener("change", () => sendAll(input.files));
  ["dragenter", "dragover"].forEach((name) =>
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragover");
    }),
  );
  ["dragleave", "drop"].forEach((name) =>
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.remove("dragover");
    }),
  );
  zone.addEventListener("drop", (event) => sendAll(event.dataTransfer.files));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendAll(input.files);
  });
})();

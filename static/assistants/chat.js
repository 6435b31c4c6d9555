// Chat page: send a question, show the answer as it streams (server-sent
// events over a POST), stop it, regenerate it. No inline script (CSP).
(function () {
  // Phones: the conversation list sits behind a button.
  const toggle = document.querySelector("[data-toggle-conversations]");
  const sidebar = document.getElementById("chat-sidebar");
  if (toggle && sidebar) {
    toggle.addEventListener("click", () => {
      const open = sidebar.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // [n] markers open the cited passage in the side panel; the chat stays where it was.
  // On phones the link opens the passage in a new tab instead (its target="_blank").
  const panel = document.getElementById("citation-panel");
  const wide = window.matchMedia("(min-width: 901px)");
  if (!panel) return;
  const body = panel.querySelector(".citation-body");
  let opener = null;

  function closePanel() {
    panel.hidden = true;
    body.textContent = "";
    if (opener) opener.focus({ preventScroll: true });
    opener = null;
  }

  document.addEventListener("click", async (event) => {
    const link = event.target.closest("a.cite");
    if (link && wide.matches && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      opener = link;
      panel.hidden = false;
      body.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(link.href, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
        body.innerHTML = response.ok ? await response.text() : "<p>The passage could not be loaded.</p>";
      } catch (error) {
        body.textContent = "The passage could not be loaded.";
      }
      body.removeAttribute("aria-busy");
      panel.focus({ preventScroll: true });
      const mark = body.querySelector("mark");
      if (mark) mark.scrollIntoView({ block: "center", inline: "nearest" });
      return;
    }
    if (event.target.closest("[data-close-citation]")) closePanel();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) closePanel();
  });
})();

(function () {
  const form = document.getElementById("ask-form");
  const list = document.getElementById("messages");
  if (!form || !list) return;
  const textarea = form.querySelector("textarea[name=question]");
  const sendButton = form.querySelector("[data-send]");
  const stopButton = form.querySelector("[data-stop]");
  const errorBox = form.querySelector(".ask-error");
  let controller = null;

  // The view follows a streamed answer while the reader is at the bottom; scrolling up stops that.
  function atBottom() {
    const root = document.documentElement;
    return window.innerHeight + window.scrollY >= root.scrollHeight - 48;
  }

  function toBottom() {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  // Opening a conversation shows its latest message (a link to one message keeps its place).
  if (list.querySelector(".msg") && !window.location.hash) {
    if ("scrollRestoration" in history) history.scrollRestoration = "manual";
    toBottom();
  }

  function csrfToken() {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  // While an answer streams, the live region (#messages) is busy: screen readers announce it once, whole.
  function busy(on) {
    sendButton.disabled = on;
    sendButton.setAttribute("aria-busy", on ? "true" : "false");
    list.setAttribute("aria-busy", on ? "true" : "false");
    // Stop disappears with the answer's end: the keyboard goes back to the question box.
    if (!on && document.activeElement === stopButton) textarea.focus({ preventScroll: true });
    stopButton.hidden = !on;
  }

  // Keyboard focus lost with `old` (replaced by `node`) moves to the first of `selectors` found in node.
  function moveFocus(old, node, ...selectors) {
    const active = document.activeElement;
    if (!node || !(old.contains(active) || active === document.body || active === null)) return;
    for (const selector of selectors) {
      const target = node.querySelector(selector);
      if (target) {
        target.focus({ preventScroll: true });
        return;
      }
    }
  }

  function showError(text) {
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  // Why no answer came: the "failure" event's {detail, status, retry_after} (else the "error" event's text),
  // and for a 429 when to ask again, unless the words already say it (a limit names its reset time).
  function failureText(failure) {
    let text = failure.detail || "The question could not be answered.";
    const wait = Math.ceil(Number(failure.retry_after) || 0);
    if (failure.status === 429 && wait > 0 && !/\d/.test(text)) {
      const at = new Date(Date.now() + wait * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      text += " Try again in " + (wait < 90 ? wait + " s" : Math.ceil(wait / 60) + " min") + " (at " + at + ").";
    }
    return text;
  }

  function element(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function addUserBubble(text) {
    const wrap = document.createElement("div");
    wrap.className = "msg msg-user";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    wrap.appendChild(bubble);
    list.appendChild(wrap);
    return wrap;
  }

  function addPendingAnswer() {
    const wrap = document.createElement("div");
    wrap.className = "msg msg-assistant pending";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const answer = document.createElement("div");
    answer.className = "answer streaming";
    answer.setAttribute("aria-busy", "true");
    // Replaced by the first words of the answer.
    const waiting = document.createElement("span");
    waiting.className = "thinking";
    waiting.textContent = "Thinking…";
    answer.appendChild(waiting);
    bubble.appendChild(answer);
    wrap.appendChild(bubble);
    list.appendChild(wrap);
    return wrap;
  }

  // A new conversation: first under "Today" in the list, and its bar (rename, pin, export, delete) above the messages.
  function addToSidebar(conversation) {
    const nav = document.querySelector(".conversation-list");
    if (nav) {
      nav.querySelectorAll(":scope > p.small:not(.conversation-group)").forEach((p) => p.remove());
      nav.querySelectorAll("a[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
      const labels = Array.from(nav.querySelectorAll(".conversation-group"));
      let group = labels.find((p) => p.textContent.trim() === "Today");
      let items;
      if (group) {
        items = group.nextElementSibling;
      } else {
        group = document.createElement("p");
        group.className = "small muted conversation-group";
        group.textContent = "Today";
        items = document.createElement("ul");
        const pinned = labels.find((p) => p.textContent.trim() === "Pinned");
        const after = pinned ? pinned.nextElementSibling : null;
        if (after) after.after(group, items);
        else nav.prepend(group, items);
      }
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = conversation.url;
      link.setAttribute("aria-current", "page");
      const title = document.createElement("span");
      title.className = "conversation-title";
      title.textContent = conversation.title || "New conversation";
      const time = document.createElement("time");
      time.className = "conversation-date";
      time.textContent = conversation.time || "";
      link.append(title, time);
      item.appendChild(link);
      items.prepend(item);
    }
    if (conversation.bar && !document.querySelector(".conversation-bar")) {
      const bar = element(conversation.bar);
      if (bar) list.before(bar);
    }
  }

  function parseEvents(buffer, onEvent) {
    // Returns the unparsed remainder.
    let index;
    while ((index = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      let event = "message";
      const data = [];
      block.split("\n").forEach((line) => {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      });
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
    return buffer;
  }

  // The server's reason for refusing a question before any answer started: its JSON `detail`, or for a
  // page that is not JSON (a 503 while the database does not answer, a proxy's 502) what it means, with
  // the wait its Retry-After asks for.
  async function refusal(response) {
    let detail = null;
    try {
      const data = await response.json();
      if (data && typeof data.detail === "string") detail = data.detail;
    } catch (error) {
      // Not JSON: said from the status.
    }
    const wait = Math.ceil(Number(response.headers.get("Retry-After")) || 0);
    if (detail) return failureText({ detail: detail, status: response.status, retry_after: wait });
    if (response.status === 403) return "You may not ask this assistant.";
    if (response.status >= 500) {
      let text = "The service is briefly unavailable; your question is still in the box.";
      if (wait > 0) text += " Try again in " + (wait < 90 ? wait + " s" : Math.ceil(wait / 60) + " min") + ".";
      return text;
    }
    return "The server refused the question (" + response.status + ").";
  }

  // The streamed answer gives way to the stored one, rendered as a reload shows it.
  function replacePending(pending, node) {
    const follow = atBottom();
    const focused = pending.contains(document.activeElement);
    pending.replaceWith(node);
    // A regenerated answer takes the focus its Regenerate button had.
    if (focused) moveFocus(pending, node, "[data-regenerate]");
    if (follow) toBottom();
    // Let htmx wire up the feedback and version buttons of the new message.
    if (window.htmx) window.htmx.process(node);
  }

  // An answer cut short (stopped, or the model failed after some words) as the server stored it: the same
  // message a reload shows, with its Copy and Regenerate buttons and its "interrupted" note. A stopped answer
  // is saved once the server sees the page hang up, so it is asked for again for a few seconds while it still
  // reads as streaming; if it never comes, the page keeps the words and the note it shows.
  async function showStored(pending, id) {
    const url = form.dataset.messageUrl;
    if (!url || !id) return;
    for (const wait of [0, 250, 500, 1000, 2000, 4000]) {
      if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!pending.isConnected) return;
      let node = null;
      try {
        const response = await fetch(url.replace("/0/", "/" + id + "/"), {
          method: "POST",
          headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
          credentials: "same-origin",
        });
        if (response.status === 404) return;
        if (response.ok) node = element(await response.text());
      } catch (error) {
        // Not reached this time: asked again.
      }
      if (node && node.dataset.status !== "streaming") {
        if (pending.isConnected) replacePending(pending, node);
        return;
      }
    }
  }

  // The note a reload shows under an interrupted answer: the badge, and the reason when there is one.
  function interruptedNote(answer, reason) {
    answer.removeAttribute("aria-busy");
    answer.classList.remove("streaming");
    const note = document.createElement("p");
    note.className = "small interrupted";
    const badge = document.createElement("span");
    badge.className = "badge badge-warn";
    badge.textContent = "interrupted";
    note.append(badge);
    if (reason) note.append(" " + reason);
    answer.after(note);
  }

  // restore(kept) undoes what the page showed for this question (it was refused or could not be sent);
  // kept: the server saved the question before the gateway refused it, so its bubble stays.
  async function ask(body, pending, restore) {
    controller = new AbortController();
    busy(true);
    showError("");
    const answer = pending.querySelector(".answer");
    let text = "";
    let finished = false;
    let failure = null;
    let answerId = null;
    let cutShort = false;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: body,
        headers: { "X-CSRFToken": csrfToken(), Accept: "text/event-stream" },
        signal: controller.signal,
        credentials: "same-origin",
      });
      if (!response.ok || !response.body) {
        const reason = await refusal(response);
        finished = true;
        restore();
        showError(reason);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), (event, data) => {
          if (event === "conversation") {
            form.querySelector("input[name=conversation]").value = data.id;
            history.replaceState(null, "", data.url);
            addToSidebar(data);
          } else if (event === "meta") {
            answerId = data.answer_id;
          } else if (event === "delta") {
            const follow = atBottom();
            text += data;
            answer.textContent = text;
            if (follow) toBottom();
          } else if (event === "done") {
            finished = true;
            replacePending(pending, element(data.html));
          } else if (event === "failure") {
            failure = data;
          } else if (event === "error") {
            finished = true;
            const reason = failureText(failure || { detail: data });
            if (text) {
              // The partial answer is kept (the server stored it as interrupted): marked as a reload shows it,
              // a short badge and the reason beside it, until the stored message takes its place.
              interruptedNote(answer, reason);
              cutShort = true;
            } else {
              // No answer came (a limit, an archived workspace, the model failing): the question goes back
              // into the box. A failed regeneration: the server shows the earlier version again, and so does the page.
              restore(true);
              showError(reason);
            }
          }
        });
      }
    } catch (error) {
      if (error.name === "AbortError" && !text) {
        // Stopped before the first words: as for a refusal, the question goes back into the box (and its
        // bubble stays, as the server keeps it without an answer; a regeneration shows the earlier version).
        finished = true;
        restore(true);
      } else if (error.name === "AbortError") {
        // Stopped after some words: the server keeps them as an interrupted answer.
        interruptedNote(answer, "");
        cutShort = true;
        finished = true;
      } else {
        finished = true;
        restore();
        showError(error.message === "Failed to fetch" ? "The server could not be reached; your question is still in the box." : error.message);
      }
    } finally {
      if (!finished && pending.isConnected) {
        answer.removeAttribute("aria-busy");
        answer.classList.remove("streaming");
      }
      controller = null;
      busy(false);
    }
    if (cutShort) showStored(pending, answerId);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // One answer at a time: Enter while one streams (requestSubmit fires even with Send disabled) sends
    // nothing, and the next question waits in the box.
    if (controller) return;
    const question = textarea.value.trim();
    if (!question) {
      showError("Ask a question: the message is empty.");
      return;
    }
    const empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    const body = new FormData(form);
    const bubble = addUserBubble(question);
    const typed = textarea.value;
    textarea.value = "";
    count();
    const pending = addPendingAnswer();
    toBottom();
    // The Send button is disabled while the answer streams: the keyboard stays in the question box.
    textarea.focus({ preventScroll: true });
    ask(body, pending, (kept) => {
      // Nothing the user typed is lost: the question goes back into the box. A question the server kept
      // stays in the conversation too, as a reload shows it.
      if (!kept) bubble.remove();
      pending.remove();
      if (!textarea.value) textarea.value = typed;
      count();
      textarea.focus();
    });
  });

  // A counter that appears near the limit (from 80 %) and turns red past it; the server still decides.
  const counter = form.querySelector(".char-count");
  const maxChars = parseInt(textarea.dataset.maxChars || "0", 10);
  function count() {
    if (!counter || !maxChars) return;
    const used = textarea.value.trim().length;
    counter.hidden = used < maxChars * 0.8;
    counter.classList.toggle("over", used > maxChars);
    counter.textContent =
      used > maxChars
        ? (used - maxChars).toLocaleString() + " characters over the limit of " + maxChars.toLocaleString()
        : used.toLocaleString() + " / " + maxChars.toLocaleString();
  }
  textarea.addEventListener("input", count);
  count();

  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", () => {
    if (controller) controller.abort();
  });

  // A suggested question on an empty chat: ask it.
  list.addEventListener("click", (event) => {
    const starter = event.target.closest("[data-starter]");
    if (!starter || controller) return;
    textarea.value = starter.dataset.starter;
    count();
    form.requestSubmit();
  });

  list.addEventListener("click", (event) => {
    const button = event.target.closest("[data-regenerate]");
    if (!button || controller) return;
    // Redo this answer, for its own question and the history before it; the server keeps
    // the earlier version and the new one comes back with its ‹ n/m › switcher.
    const message = button.closest(".msg-assistant");
    const body = new FormData(form);
    body.set("regenerate", "1");
    body.set("question", "");
    if (message.dataset.message) body.set("answer", message.dataset.message);
    const pending = addPendingAnswer();
    pending.dataset.regenerate = "1";
    const focused = message.contains(document.activeElement);
    message.replaceWith(pending);
    // The focus waits on the answer being redone, and comes back to its Regenerate button.
    if (focused) {
      pending.tabIndex = -1;
      pending.focus({ preventScroll: true });
    }
    ask(body, pending, () => {
      const lost = pending.contains(document.activeElement);
      pending.replaceWith(message);
      if (lost) moveFocus(pending, message, "[data-regenerate]");
    });
  });

  // ‹ and › swap the whole message for another version: the focus stays on the switcher.
  let switching = null;
  list.addEventListener("click", (event) => {
    const button = event.target.closest("[data-version]");
    if (!button) return;
    const message = button.closest(".msg");
    switching = { index: Array.prototype.indexOf.call(list.children, message), direction: button.dataset.version, message };
  });
  document.addEventListener("htmx:afterSwap", () => {
    if (!switching) return;
    const { index, direction, message } = switching;
    const node = list.children[index];
    if (!node || node === message) return;
    switching = null;
    moveFocus(message, node, `[data-version=${direction}]:not([disabled])`, "[data-version]:not([disabled])");
  });
})();

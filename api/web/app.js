// The rag-news page: ask (the answer streams in), open a citation's article with the quote
// highlighted, keep a conversation, manage the documents. Plain DOM, no dependencies: every
// request goes to this service, so the page works offline.

const KEY_STORAGE = "rag-news.api-key";
const MODEL = "rag-news";
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The URL of a document; an id may hold slashes ("business/001"), each segment is encoded. */
export function documentPath(id) {
  return "/v1/documents/" + id.split("/").map(encodeURIComponent).join("/");
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

// --- the API, with the key when the server asks for one ----------------------------------------
function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage disabled: no key
  }
}

function updateKeyButton() {
  $("key-button").hidden = !storedKey();
}

let keyPrompt = null; // one prompt at a time, shared by the requests that met a 401

/** Ask for the key; resolves true when a new one was saved. */
function askForKey(reason) {
  keyPrompt ??= new Promise((resolve) => {
    const dialog = $("key-dialog");
    $("key-reason").textContent = reason;
    $("key-input").value = "";
    $("key-forget").hidden = !storedKey();
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      keyPrompt = null;
      const key = $("key-input").value.trim();
      if (dialog.returnValue === "save" && key) localStorage.setItem(KEY_STORAGE, key);
      if (dialog.returnValue === "forget") localStorage.removeItem(KEY_STORAGE);
      updateKeyButton();
      resolve(dialog.returnValue === "save" && Boolean(key));
    }, { once: true });
    dialog.showModal();
    $("key-input").focus();
  });
  return keyPrompt;
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (body.detail !== undefined) return JSON.stringify(body.detail);
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}

/** fetch with `Authorization: Bearer KEY` when a key is kept; a 401 asks for the key and retries. */
async function request(path, init = {}) {
  for (;;) {
    const key = storedKey();
    const headers = new Headers(init.headers);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    const detail = await errorDetail(response);
    const reason = key
      ? `The server refused the key (${detail}). Enter another one.`
      : `This server needs an API key (${detail}).`;
    if (!(await askForKey(reason))) throw new ApiError(401, detail);
  }
}

async function requestJson(path, init) {
  const response = await request(path, init);
  if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
  return response.json();
}

/** The JSON events of a server-sent event stream, until `[DONE]`. */
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart()).join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

// --- views: chat beside a panel (article or documents); one at a time on a narrow screen ------
const layout = $("layout");
const wide = window.matchMedia("(min-width: 860px)");

function showView(view) {
  if (view === "chat") layout.dataset.view = "chat";
  else {
    layout.dataset.view = "panel";
    layout.dataset.panel = view;
  }
  updateViewButtons();
}

function updateViewButtons() {
  const panelShown = wide.matches || layout.dataset.view === "panel";
  for (const button of document.querySelectorAll(".views button")) {
    const view = button.dataset.view;
    const pressed = view === "chat" ? layout.dataset.view === "chat" : panelShown && layout.dataset.panel === view;
    button.setAttribute("aria-pressed", String(pressed));
  }
}

// --- the conversation --------------------------------------------------------------------------
const log = $("log");
let history = []; // the messages sent with the next question, as the API takes them
let conversation = 0; // bumped by "New conversation": a stream still running is dropped
let controller = null;
let busy = false;

function setBusy(value) {
  busy = value;
  $("ask-button").disabled = value;
  log.setAttribute("aria-busy", String(value));
}

function stickToBottom(update) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  update();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** Answer text with each [n] marker as a chip: a button once its citation is known. */
function renderAnswerText(container, text, citations) {
  const byRef = new Map((citations || []).map((c) => [c.ref, c]));
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    nodes.push(text.slice(last, match.index));
    const citation = byRef.get(Number(match[1]));
    if (citation) {
      nodes.push(element("button", {
        type: "button", class: "chip", "data-ref": match[1], text: match[1],
        title: `${citation.title}: “${citation.quote}”`,
        "aria-label": `Citation ${match[1]}: ${citation.title}`,
        onclick: (event) => openCitation(citation, event.currentTarget),
      }));
    } else {
      nodes.push(element("span", { class: "chip pending", text: match[1] }));
    }
    last = match.index + match[0].length;
  }
  nodes.push(text.slice(last));
  container.replaceChildren(...nodes);
}

function addUserTurn(question) {
  $("empty-log").hidden = true;
  stickToBottom(() => log.append(element("div", { class: "turn question" },
    element("span", { class: "visually-hidden", text: "You asked: " }), question)));
}

function addAnswerTurn() {
  const status = element("p", { class: "answer-status", text: "Searching the articles…" });
  const text = element("p", { class: "answer-text" });
  const extra = element("div", { class: "answer-extra" });
  const turn = element("div", { class: "turn answer streaming" }, status, text, extra);
  log.append(turn);
  log.scrollTop = log.scrollHeight;
  return {
    turn,
    write(answer) {
      status.textContent = "Writing the answer…";
      stickToBottom(() => renderAnswerText(text, answer, null));
    },
    finish(answer, final, question) {
      turn.classList.remove("streaming");
      stickToBottom(() => {
        renderAnswerText(text, answer, final.citations);
        if (final.abstained) {
          turn.classList.add("abstained");
          status.textContent = "No answer in the articles";
          extra.append(element("p", { class: "abstain-reason" },
            element("strong", { text: "Why: " }), final.abstain_reason || "no reason given"));
        } else {
          const articles = new Set(final.citations.map((c) => c.document_id)).size;
          const missing = (final.parts || []).filter((p) => !p.answered);
          status.textContent = missing.length
            ? `Partly answered: ${missing.length} of ${final.parts.length} parts not in the articles`
            : `Answer, checked against ${articles} article${articles === 1 ? "" : "s"}`;
          if (missing.length) {
            turn.classList.add("partial");
            extra.append(partsList(final.parts));
          }
          extra.append(sourcesList(final.citations));
        }
        const rewritten = final.rewritten_question;
        if (rewritten && rewritten.trim() !== question.trim()) {
          extra.append(element("p", { class: "rewritten" }, "Answered as: ", element("q", { text: rewritten })));
        }
        if (final.passages?.length) extra.append(passagesToggle(final.passages));
      });
    },
    fail(message) {
      turn.classList.remove("streaming");
      turn.classList.add("failed");
      status.textContent = "No answer";
      stickToBottom(() => extra.append(element("p", { class: "error", role: "alert", text: message })));
    },
  };
}

function partsList(parts) {
  // Each thing the question asked, and whether the articles answer it: a half answer must
  // never read as a whole one.
  return element("ul", { class: "parts", "aria-label": "Parts of the question" }, ...parts.map((part) =>
    element("li", { class: part.answered ? "part answered" : "part missing" },
      element("strong", { text: part.answered ? "Answered: " : "Not in the articles: " }),
      element("q", { text: part.question }),
      part.answered ? "" : element("span", { class: "part-reason", text: ` (${part.reason})` }))));
}

function sourcesList(citations) {
  return element("ol", { class: "sources", "aria-label": "Sources" }, ...citations.map((citation) =>
    element("li", { value: String(citation.ref) }, element("button", {
      type: "button", class: "source",
      onclick: (event) => openCitation(citation, event.currentTarget),
    }, element("span", { class: "source-title", text: citation.title }),
    element("span", { class: "source-quote", text: citation.quote })))));
}

function passagesToggle(passages) {
  const items = passages.map((passage) => element("li", {},
    element("button", {
      type: "button", class: "link",
      onclick: (event) => openArticle(passage.document_id,
        { start: passage.start, end: passage.end, text: passage.text }, event.currentTarget),
    }, passage.title || passage.document_id),
    element("span", {
      class: "passage-info",
      text: ` ${passage.document_id} · ` + (passage.context_of ? "read beside a retrieved passage" : `score ${passage.score.toFixed(4)}`),
    }),
    element("blockquote", { text: passage.text })));
  return element("details", { class: "passages" },
    element("summary", { text: `Passages read (${passages.length})` }),
    element("ol", {}, ...items));
}

async function ask(question) {
  const messages = [...history, { role: "user", content: question }];
  const mine = conversation;
  addUserTurn(question);
  const view = addAnswerTurn();
  setBusy(true);
  controller = new AbortController();
  try {
    const response = await request("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: MODEL, stream: true, messages }),
      signal: controller.signal,
    });
    if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
    let answer = "";
    let final = null;
    for await (const event of sseEvents(response)) {
      if (mine !== conversation) return;
      if (event.error) throw new ApiError(0, event.error.message);
      const choice = event.choices?.[0];
      if (choice?.delta?.content) {
        answer += choice.delta.content;
        view.write(answer);
      }
      if (choice?.finish_reason) final = event;
    }
    if (mine !== conversation) return;
    if (!final) throw new ApiError(0, "the answer stream ended before the answer did");
    view.finish(answer, final, question);
    history = [...messages, { role: "assistant", content: answer }];
  } catch (error) {
    if (error.name === "AbortError" || mine !== conversation) return;
    view.fail(error.message);
  } finally {
    if (mine === conversation) setBusy(false);
  }
}

function newConversation() {
  conversation += 1;
  controller?.abort();
  history = [];
  setBusy(false);
  log.replaceChildren($("empty-log"));
  $("empty-log").hidden = false;
  showView("chat");
  $("question").value = "";
  $("question").focus();
}

// --- the article panel -------------------------------------------------------------------------
const META_FIELDS = [["date", "Date"], ["source", "Source"], ["section", "Section"], ["author", "Author"], ["url", "Link"]];
let opening = 0; // the latest article asked for wins
let opener = null; // the control that opened the article, for "Back to the answer"

function openCitation(citation, from) {
  return openArticle(citation.document_id, { start: citation.start, end: citation.end, text: citation.quote }, from);
}

/** Where the span lies in the text as it is now: its offsets, or (an article re-ingested since
 * the answer) the first place its words are found; null when they are gone. */
function locate(text, span) {
  if (text.slice(span.start, span.end) === span.text) return span;
  const start = text.indexOf(span.text);
  return start < 0 ? null : { start, end: start + span.text.length, text: span.text };
}

function renderMeta(documentInfo) {
  const rows = [];
  for (const [key, label] of META_FIELDS) {
    const value = documentInfo.metadata?.[key];
    if (value === undefined || value === null || value === "") continue;
    let shown = String(value);
    if (key === "url" && /^https?:\/\//i.test(shown)) {
      shown = element("a", { href: shown, rel: "noopener noreferrer", target: "_blank", text: shown });
    }
    rows.push(element("div", { "data-meta": key }, element("dt", { text: label }), element("dd", {}, shown)));
  }
  rows.push(element("div", { "data-meta": "id" }, element("dt", { text: "Document" }),
    element("dd", {}, element("code", { text: documentInfo.id }))));
  $("article-meta").replaceChildren(...rows);
}

async function openArticle(documentId, span, from) {
  const mine = ++opening;
  opener = from || null;
  showView("article");
  $("article-empty").hidden = true;
  $("article-view").hidden = false;
  $("article-title").textContent = "Opening…";
  $("article-meta").replaceChildren();
  $("article-text").replaceChildren();
  let documentInfo;
  try {
    documentInfo = await requestJson(documentPath(documentId));
  } catch (error) {
    if (mine !== opening) return;
    $("article-title").textContent = "This article could not be opened";
    $("article-text").replaceChildren(element("p", { class: "error", role: "alert", text: error.message }));
    return;
  }
  if (mine !== opening) return;
  $("article-title").textContent = documentInfo.title || documentInfo.id;
  renderMeta(documentInfo);
  const text = documentInfo.text;
  const found = span ? locate(text, span) : null;
  const body = $("article-text");
  if (!found) {
    body.replaceChildren(text);
    if (span) body.prepend(element("p", { class: "error", role: "alert", text: "The quoted words are no longer in this article (it changed since the answer)." }));
    body.scrollTop = 0;
    $("article-title").focus();
    return;
  }
  const mark = element("mark", { id: "highlight", text: text.slice(found.start, found.end) });
  body.replaceChildren(text.slice(0, found.start), mark, text.slice(found.end));
  $("article-title").focus({ preventScroll: true });
  mark.scrollIntoView({ block: "center" });
}

function backToAnswer() {
  showView("chat");
  if (opener?.isConnected) opener.focus();
  else $("question").focus();
}

// --- the documents panel -----------------------------------------------------------------------
let documents = [];
let canWrite = true; // false with a read-only key: no upload, no Delete buttons

function documentsStatus(message) {
  $("documents-status").textContent = message;
}

function documentsError(message) {
  $("documents-error").textContent = message;
  $("documents-error").hidden = !message;
}

async function loadDocuments() {
  try {
    documents = (await requestJson("/v1/documents")).documents;
    canWrite = await loadAccess();
    renderDocuments();
  } catch (error) {
    documentsError(`The documents could not be listed: ${error.message}`);
  }
}

/** Whether the key in use may ingest and delete (a server without /v1/access: assume so). */
async function loadAccess() {
  try {
    return (await requestJson("/v1/access")).can_write;
  } catch {
    return true;
  }
}

function renderDocuments() {
  $("drop-zone").hidden = !canWrite;
  const query = $("doc-search").value.trim().toLowerCase();
  const shown = documents.filter((d) => !query || d.title.toLowerCase().includes(query) || d.id.toLowerCase().includes(query));
  $("documents-count").textContent = query
    ? `${shown.length} of ${documents.length} documents match`
    : `${documents.length} document${documents.length === 1 ? "" : "s"}`;
  $("document-list").replaceChildren(...shown.map((d) => {
    const ingested = new Date(d.ingested_at);
    return element("li", { class: "document", "data-id": d.id },
      element("div", { class: "document-main" },
        element("button", {
          type: "button", class: "link document-open", text: d.title || d.id,
          onclick: (event) => openArticle(d.id, null, event.currentTarget),
        }),
        element("div", { class: "document-info" },
          element("code", { text: d.id }),
          ` · ${d.chunk_count} chunk${d.chunk_count === 1 ? "" : "s"} · ingested `,
          element("time", { datetime: d.ingested_at, text: Number.isNaN(ingested.getTime()) ? d.ingested_at : ingested.toLocaleString() }))),
      canWrite ? element("button", {
        type: "button", class: "danger document-delete", text: "Delete",
        "aria-label": `Delete ${d.title || d.id}`, onclick: () => deleteDocument(d),
      }) : "");
  }));
}

async function upload(files) {
  documentsError("");
  for (const file of files) {
    const form = new FormData();
    form.append("file", file, file.name);
    documentsStatus(`Uploading ${file.name}…`);
    try {
      const result = await requestJson("/v1/documents", { method: "POST", body: form });
      documentsStatus(`${result.title} (${result.document_id}): ${result.status}, ${result.chunk_count} chunk${result.chunk_count === 1 ? "" : "s"}`);
    } catch (error) {
      documentsStatus("");
      documentsError(error.message.includes(file.name) ? error.message : `${file.name}: ${error.message}`);
    }
  }
  $("upload").value = "";
  await loadDocuments();
}

function confirmDialog(message) {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent = message;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function deleteDocument(d) {
  const name = d.title || d.id;
  if (!(await confirmDialog(`Delete “${name}” (${d.id})? Its chunks leave the index for good.`))) return;
  documentsError("");
  try {
    await requestJson(documentPath(d.id), { method: "DELETE" });
    documentsStatus(`Deleted ${name}`);
  } catch (error) {
    documentsError(`${name}: ${error.message}`);
  }
  await loadDocuments();
  $("doc-search").focus();
}

// --- wiring ------------------------------------------------------------------------------------
function start() {
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question || busy) return;
    $("question").value = "";
    ask(question);
  });
  $("new-conversation").addEventListener("click", newConversation);
  $("key-button").addEventListener("click", async () => {
    await askForKey("Change or forget the API key kept in this browser.");
    await loadDocuments(); // another key may allow other things
  });
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    showView("chat");
    $("question").focus();
  });
  for (const button of document.querySelectorAll(".views button")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  wide.addEventListener("change", updateViewButtons);
  const back = element("button", { type: "button", class: "link back", text: "← Back to the answer", onclick: backToAnswer });
  $("article-head").prepend(back);

  $("doc-search").addEventListener("input", renderDocuments);
  $("upload").addEventListener("change", () => upload([...$("upload").files]));
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    upload([...event.dataTransfer.files]);
  });
  // A file dropped beside the zone must not replace the page with the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  updateKeyButton();
  updateViewButtons();
  loadDocuments();
}

start();

// jobport console: small helpers; every page works without them except the live parts.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const text = source ? (source.value ?? source.textContent) : "";
  const done = () => { button.textContent = "Copied"; setTimeout(() => (button.textContent = "Copy"), 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallback(source, done));
  } else {
    fallback(source, done);
  }
});

function fallback(source, done) {
  if (!source) return;
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
}

// <time datetime="..."> shows the local time beside the UTC one.
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]:not([data-local])")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.dataset.local = "1";
      el.title = when.toLocaleString();
    }
  }
}
document.addEventListener("DOMContentLoaded", () => localTimes(document));
document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));

// Remote Access: a page that shows a secret once (the answer to a POST) replaces its history
// entry with the key's own page, so a reload or Back shows the key without the secret.
document.addEventListener("DOMContentLoaded", () => {
  const once = document.querySelector("[data-replace-url]");
  if (once && window.history.replaceState) window.history.replaceState(null, "", once.dataset.replaceUrl);
});

// Jobs and runs: a run's live log. <pre class="log" data-log-src> follows the API's own
// SSE endpoint (the session cookie authenticates it; EventSource resumes after a dropped
// connection with Last-Event-ID); with its "follow" box checked the view keeps to the end.
const LOG_LINES_KEPT = 5000;

function logLine(line) {
  const span = document.createElement("span");
  span.className = line.stream || "";
  const at = (line.at || "").slice(11, 19);
  const where = line.step ? ` [${line.step}]` : "";
  const item = line.iteration !== null && line.iteration !== undefined ? ` (item ${line.iteration})` : "";
  span.textContent = `${at}${where}${item} ${line.text}\n`;
  return span;
}

function followLog(pre) {
  const follow = document.getElementById(pre.dataset.follow);
  const note = document.getElementById(pre.dataset.note);
  const say = (text) => { if (note) note.textContent = text; };
  const source = new EventSource(pre.dataset.logSrc);
  say("Live");
  source.addEventListener("log", (event) => {
    pre.appendChild(logLine(JSON.parse(event.data)));
    while (pre.childNodes.length > LOG_LINES_KEPT) pre.removeChild(pre.firstChild);
    if (!follow || follow.checked) pre.scrollTop = pre.scrollHeight;
  });
  source.addEventListener("end", (event) => {
    source.close();
    const end = JSON.parse(event.data);
    const status = end.status;
    if (end.logsPruned && !pre.childNodes.length) {
      // Retention removed the lines after the page was made: said instead of an empty log.
      const pruned = document.createElement("p");
      pruned.className = "notice log-pruned";
      pruned.id = "log-pruned";
      pruned.textContent = pre.dataset.pruned || "The log lines of this run were removed by the retention policy.";
      pre.replaceWith(pruned);
      if (follow) follow.parentElement.hidden = true;
      say(`The run ended: ${status}.`);
    } else {
      say(`The run ended: ${status}.` + (pre.childNodes.length ? "" : " It logged nothing."));
    }
    pre.dataset.ended = status;
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) say("The live log stopped: reload the page to resume.");
    else say("Reconnecting…");
  });
  source.addEventListener("open", () => say("Live"));
  if (follow) follow.addEventListener("change", () => { if (follow.checked) pre.scrollTop = pre.scrollHeight; });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const pre of document.querySelectorAll("pre.log[data-log-src]")) followLog(pre);
});

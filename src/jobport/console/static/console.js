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

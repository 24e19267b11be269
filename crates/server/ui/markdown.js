// Safe Markdown for untrusted model output: the text is HTML-escaped FIRST, then a small
// subset is turned into tags we write ourselves: fenced code blocks, inline code, headings,
// bold, italic, bulleted and numbered lists, block quotes, paragraphs and links whose URL
// is http(s) or mailto only. No HTML from the input ever reaches the page as markup.
// Pure functions (no DOM), so Node's test runner checks them (tests/ui/markdown.test.mjs).

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes the five HTML-significant characters. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A link target we allow, escaped for an attribute, or null (javascript:, data:, ...). */
export function safeUrl(escapedUrl) {
  // The URL arrives escaped; undo only &amp; to judge the scheme, then keep it escaped.
  const raw = escapedUrl.replace(/&amp;/g, "&").trim();
  if (/[\u0000-\u001f\s]/.test(raw)) return null;
  if (!/^(https?:\/\/|mailto:)/i.test(raw)) return null;
  return escapedUrl;
}

/** Inline spans of one already-escaped line: code, links, bold, italic. */
export function inline(escaped) {
  const codes = [];
  // Code spans first, set aside so nothing inside them is formatted.
  let s = escaped.replace(/`([^`\n]+)`/g, (_, code) => {
    codes.push(`<code>${code}</code>`);
    return `\u0000${codes.length - 1}\u0000`;
  });
  s = s.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (whole, label, url) => {
    const href = safeUrl(url);
    if (href === null) return label;
    return `<a href="${href}" target="_blank" rel="noopener noreferrer nofollow">${label}</a>`;
  });
  s = s.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>");
  s = s.replace(/__([^_\n]+)__/g, "<strong>$1</strong>");
  s = s.replace(/(^|[^*\w])\*([^*\s][^*\n]*?)\*(?!\w)/g, "$1<em>$2</em>");
  s = s.replace(/(^|[^_\w])_([^_\s][^_\n]*?)_(?!\w)/g, "$1<em>$2</em>");
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => codes[Number(i)]);
}

const FENCE = /^\s*```\s*([\w+.#-]*)\s*$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const QUOTE = /^&gt;\s?(.*)$/;

/**
 * Renders Markdown to HTML. Safe for any input: everything is escaped before any tag is
 * added, and only the tags above are added. An unclosed fence (a stream still running)
 * renders as a code block up to the end.
 */
export function renderMarkdown(text) {
  const lines = escapeHtml(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let para = [];
  let list = null; // { tag: "ul" | "ol", items: [] }
  const flushPara = () => {
    if (para.length) out.push(`<p>${para.map(inline).join("<br>")}</p>`);
    para = [];
  };
  const flushList = () => {
    if (list) {
      const items = list.items.map((i) => `<li>${inline(i)}</li>`).join("");
      out.push(`<${list.tag}>${items}</${list.tag}>`);
    }
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flushPara();
      flushList();
      const code = [];
      i++;
      while (i < lines.length && !FENCE.test(lines[i])) code.push(lines[i++]);
      const lang = fence[1] ? ` data-lang="${fence[1]}"` : "";
      out.push(`<pre${lang}><code>${code.join("\n")}</code></pre>`);
      continue;
    }
    let m;
    if ((m = BULLET.exec(line)) || (m = NUMBERED.exec(line))) {
      flushPara();
      const tag = BULLET.test(line) ? "ul" : "ol";
      if (list && list.tag !== tag) flushList();
      if (!list) list = { tag, items: [] };
      list.items.push(m[1]);
      continue;
    }
    if (line.trim() === "") {
      flushPara();
      flushList();
      continue;
    }
    if ((m = HEADING.exec(line))) {
      flushPara();
      flushList();
      const level = Math.min(m[1].length + 2, 6); // h3..h6 inside a message
      out.push(`<h${level}>${inline(m[2])}</h${level}>`);
      continue;
    }
    if ((m = QUOTE.exec(line))) {
      flushPara();
      flushList();
      out.push(`<blockquote>${inline(m[1])}</blockquote>`);
      continue;
    }
    flushList();
    para.push(line);
  }
  flushPara();
  flushList();
  return out.join("\n");
}

// Unit tests of the web UI's Markdown and escaping module (crates/server/ui/markdown.js),
// run with Node's own test runner (`node --test tests/ui/`, called by scripts/test-ui).
import { test } from "node:test";
import assert from "node:assert/strict";
import { escapeHtml, inline, renderMarkdown, safeUrl } from "../../crates/server/ui/markdown.js";

test("escapes the five HTML characters", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
});

test("script and img onerror come out as text, never as tags", () => {
  const html = renderMarkdown('<script>alert(1)</script> <img src=x onerror=alert(1)>');
  assert.ok(!html.includes("<script"), html);
  assert.ok(!html.includes("<img"), html);
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), html);
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"), html);
});

test("HTML inside code blocks and spans stays escaped", () => {
  const html = renderMarkdown("```html\n<b onclick=x>hi</b>\n```\nand `<i>`");
  assert.ok(html.includes('<pre data-lang="html"><code>&lt;b onclick=x&gt;hi&lt;/b&gt;</code></pre>'), html);
  assert.ok(html.includes("<code>&lt;i&gt;</code>"), html);
});

test("code blocks keep their text unformatted and an open fence runs to the end", () => {
  assert.equal(renderMarkdown("```\n**not bold**\n```"), "<pre><code>**not bold**</code></pre>");
  assert.equal(renderMarkdown("```py\nx = 1"), '<pre data-lang="py"><code>x = 1</code></pre>');
});

test("a language tag cannot break out of the attribute", () => {
  const html = renderMarkdown('```"onmouseover=alert(1)\ncode\n```');
  assert.ok(!html.includes("data-lang"), html);
  assert.ok(!html.includes('"onmouseover'), html);
});

test("bold, italic and inline code", () => {
  assert.equal(inline("**a** *b* _c_ `*d*`"), "<strong>a</strong> <em>b</em> <em>c</em> <code>*d*</code>");
  assert.equal(inline("2 * 3 * 4"), "2 * 3 * 4");
  assert.equal(inline("snake_case_name"), "snake_case_name");
});

test("links: http(s) and mailto only", () => {
  assert.equal(
    inline("[site](https://example.com/a?b=1&amp;c=2)"),
    '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer nofollow">site</a>',
  );
  assert.equal(inline("[x](javascript:alert(1))"), "x)");
  assert.equal(inline("[x](JaVaScRiPt:alert)"), "x");
  assert.equal(inline("[x](data:text/html,hi)"), "x");
  assert.equal(safeUrl("mailto:a@b.c"), "mailto:a@b.c");
  assert.equal(safeUrl("vbscript:x"), null);
});

test("a link label or URL cannot inject attributes", () => {
  const html = renderMarkdown('[a](https://x.test/"onmouseover="alert(1))');
  assert.ok(!html.includes('"onmouseover'), html);
});

test("lists, headings, quotes and paragraphs", () => {
  assert.equal(renderMarkdown("- one\n- **two**"), "<ul><li>one</li><li><strong>two</strong></li></ul>");
  assert.equal(renderMarkdown("1. a\n2) b"), "<ol><li>a</li><li>b</li></ol>");
  assert.equal(renderMarkdown("# Title"), "<h3>Title</h3>");
  assert.equal(renderMarkdown("> quoted"), "<blockquote>quoted</blockquote>");
  assert.equal(renderMarkdown("a\nb\n\nc"), "<p>a<br>b</p>\n<p>c</p>");
});

test("empty and missing input render nothing", () => {
  assert.equal(renderMarkdown(""), "");
  assert.equal(renderMarkdown(undefined), "");
});

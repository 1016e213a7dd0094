"""The one way model text becomes page content: CommonMark in, allow-listed HTML out.

Every character a model writes (answers, reasoning, tool names, arguments and results, errors,
citations) may come from a prompt injection, and a trusted notebook output is not sanitised by
JupyterLab or nbconvert. So the HTML claudekit emits is safe by construction:

- the answer is parsed by a real CommonMark parser (markdown-it-py) with raw HTML turned off, so a tag
  in the answer is shown as text, whatever escaping trick surrounds it;
- links survive only with an ``http(s)`` or ``mailto`` target; any other link stays visible as text;
- a remote image becomes a link naming its host (nothing loads until the reader clicks); a ``data:``
  image renders;
- the whole fragment then goes through nh3's allow-list (tags, attributes, URL schemes), so even a bug
  in the steps above cannot emit a script, an event handler or a ``javascript:`` URL.

The live view applies the same rules in the page (claudekit/notebook/_js/view.js).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LINK_SCHEMES",
    "NO_MATH",
    "clean",
    "link_allowed",
    "markdown_html",
    "remote_image_label",
    "text_html",
]

LINK_SCHEMES = ("http", "https", "mailto")
# Raster images only: an SVG can carry script, and a data: URL needs no network.
_DATA_IMAGE = re.compile(r"^data:image/(?:png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE)
NO_MATH = "tex2jax_ignore mathjax_ignore"

_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"class", "title", "style"},
    "a": {"href", "target"},
    "img": {"src", "alt"},
    "ol": {"start"},
}
# Layout and colour only: nothing that can cover the page (position) or load a URL (background).
_STYLES = {
    "text-align", "color", "white-space", "font-size", "font-family", "margin-top", "overflow-x", "max-width",
}  # fmt: skip


def link_allowed(url: str) -> bool:
    """Whether ``url`` may be a link's target: ``http(s)`` or ``mailto`` only."""
    scheme = urlsplit(url.strip()).scheme.lower()
    return scheme in LINK_SCHEMES and not re.search(r"[\x00-\x20]", url.strip())


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    # The allow-list's last word on URLs: an <a> goes to the web or mail, an <img> shows inline data.
    if attr == "href":
        return value if tag == "a" and link_allowed(value) else None
    if attr == "src":
        return value if tag == "img" and _DATA_IMAGE.match(value) else None
    return value


@functools.cache
def _cleaner() -> Any:
    import nh3

    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer",
        filter_style_properties=_STYLES,
        strip_comments=True,
    )


def clean(fragment: str) -> str:
    """``fragment`` through nh3's allow-list (see the module docs)."""
    return str(_cleaner().clean(fragment))


def text_html(text: str) -> str:
    """Literal text as HTML: every character shown, line breaks and indentation kept."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        lines.append("&#160;" * (len(line) - len(body)) + html.escape(body))
    return "<br>\n".join(lines)


def remote_image_label(url: str, alt: str = "") -> str:
    """What a remote image shows instead of loading: ``image from example.com`` (and its alt text)."""
    host = urlsplit(url.strip()).hostname or "an unknown host"
    return f"image from {host}" + (f": {alt}" if alt else "")


def _image(renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = "".join(c.content for c in token.children or [])
    if _DATA_IMAGE.match(src):
        return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'
    if link_allowed(src) and not src.lower().startswith("mailto:"):
        # A link, not a load: an image URL can carry data out (a beacon) the moment it is fetched.
        label = html.escape(remote_image_label(src, alt))
        return f'<a href="{html.escape(src)}" class="ck-remote-image" target="_blank">🖼 {label}</a>'
    return html.escape(f"![{alt}]({src})")


def _math(content: str, info: dict[str, Any]) -> str:
    # TeX kept as text between its delimiters: MathJax (JupyterLab, nbconvert) typesets it from there.
    return html.escape(f"$${content}$$" if info.get("display_mode") else f"${content}$")


def _validate(url: str) -> bool:
    return link_allowed(url) or bool(_DATA_IMAGE.match(url.strip()))


@functools.cache
def _parser(math: bool) -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = _validate  # type: ignore[method-assign]
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    if math:
        from mdit_py_plugins.dollarmath import dollarmath_plugin

        dollarmath_plugin(md, allow_space=False, allow_digits=False, double_inline=False, renderer=_math)
    return md


def _link_open(renderer: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    if not link_allowed(href):  # a data: URL passed the parser's check for images only
        token.attrSet("href", "")
    token.attrSet("target", "_blank")
    return str(renderer.renderToken(tokens, idx, options, env))


def markdown_html(text: str, *, math: bool = False) -> str:
    """The model's Markdown as safe HTML (see the module docs); ``$`` is literal unless ``math``."""
    return clean(str(_parser(math).render(text)))

"""HTML for the rows and cards built in Python: Django's `format_html` and
`conditional_escape`, with the same escaping, a few times faster.

Django's versions check every argument for lazy strings through two wrappers before
escaping it; a list of 100 rows makes ~1,200 `format_html` calls and ~2,700 escapes, and
those checks were a fifth of the page's time. Here a value is escaped by the standard
library's `html.escape` (what Django's `escape` calls: & < > " ' all escaped), a lazy
string by its text, and anything with `__html__` (safe strings, forms) is taken as it says.
"""

from __future__ import annotations

from html import escape as _escape

from django.utils.safestring import SafeData, SafeString


def escape(value) -> str:
    """Django's `escape` (always escapes, safe strings too), without its lazy-string
    wrapper: ~0.3 µs a call instead of ~1.9."""
    return _escape(str(value))


def conditional_escape(value) -> str:
    """The value as HTML: escaped unless it is already safe."""
    if isinstance(value, SafeData):
        return value if isinstance(value, str) else str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape(str(value))


def format_html(format_string: str, *args, **kwargs) -> SafeString:
    """`format_string` (trusted) with every argument escaped, as safe HTML."""
    return SafeString(
        format_string.format(
            *map(conditional_escape, args),
            **{key: conditional_escape(value) for key, value in kwargs.items()},
        )
    )


def format_html_join(sep: str, format_string: str, args_generator) -> SafeString:
    """`format_html` for each tuple of arguments, joined by `sep` (escaped unless safe)."""
    return SafeString(
        conditional_escape(sep).join(
            format_string.format(*map(conditional_escape, args)) for args in args_generator
        )
    )

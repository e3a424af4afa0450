"""crm.html: the rows' fast escape and format_html escape exactly as Django's do."""

from decimal import Decimal

import pytest
from django.utils import html as django_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from crm import html


class Marked:
    """Not a string, but says what its HTML is (as forms and widgets do)."""

    def __html__(self):
        return "<b>marked</b>"

    def __repr__(self):  # a stable test id: xdist's workers must collect the same names
        return "Marked()"


VALUES = [
    "plain",
    "<script>alert('x') & \"y\"</script>",
    "上海&科技 <公司>",
    mark_safe("<em>already safe</em>"),
    gettext_lazy("Public pool"),
    12345,
    Decimal("936000.50"),
    None,
    Marked(),
    "",
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_it_escapes_each_value_as_django_does(value):
    assert html.conditional_escape(value) == django_html.conditional_escape(value)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_escape_escapes_every_value_as_django_does_safe_ones_too(value):
    assert html.escape(value) == django_html.escape(value)


def test_format_html_is_django_s_with_positional_and_named_values():
    template = '<td title="{}"><a href="/c/{pk}/">{}</a></td>'
    for value in VALUES:
        ours = html.format_html(template, value, value, pk=value)
        assert ours == django_html.format_html(template, value, value, pk=value)
        assert isinstance(ours, SafeString)


def test_format_html_join_is_django_s_and_escapes_the_separator():
    rows = [(value, index) for index, value in enumerate(VALUES)]
    for sep in ("", "<br>", mark_safe("<br>")):
        ours = html.format_html_join(sep, "<li>{} {}</li>", rows)
        assert ours == django_html.format_html_join(sep, "<li>{} {}</li>", rows)
        assert isinstance(ours, SafeString)

"""crm.renderers.FastRenderer: the widgets it builds in Python are character for
character what Django's templates give, and everything else still goes to the templates."""

import datetime
from decimal import Decimal

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy, override

from crm.renderers import FAST, FastRenderer

AWKWARD = "<script>alert('x') & \"y\"</script> 上海&科技"
ATTRS = {
    "class": "form-control is-invalid",
    "required": True,
    "disabled": False,
    "data-x": AWKWARD,
    "maxlength": 200,
    "step": Decimal("0.01"),
    "placeholder": gettext_lazy("Search"),
    "data-none": None,
}

CHOICES = [
    ("", "---------"),
    (1, "王伟"),
    ("a&b", AWKWARD),
    (gettext_lazy("Lazy group"), [(2, gettext_lazy("Public pool")), (3, 12345)]),
    ("safe", mark_safe("<em>safe</em>")),
    (None, "none"),
]

# (widget, value)
CASES = [
    (forms.TextInput(), None),
    (forms.TextInput(attrs=ATTRS), AWKWARD),
    (forms.TextInput(), mark_safe("<b>safe</b>")),
    (forms.TextInput(), ""),
    (forms.NumberInput(attrs={"min": 0}), 12345678901234),
    (forms.NumberInput(), Decimal("1234.50")),
    (forms.EmailInput(), "sales@例子.cn"),
    (forms.URLInput(), "https://a.example/?q=1&r=<2>"),
    (forms.PasswordInput(render_value=True), "p&ss"),
    (forms.HiddenInput(), 42),
    (forms.DateInput(attrs={"type": "date"}), datetime.date(9999, 12, 31)),
    (forms.DateTimeInput(attrs={"type": "datetime-local"}), datetime.datetime(2026, 12, 7, 10, 0)),
    (forms.TimeInput(), datetime.time(9, 30)),
    (forms.CheckboxInput(), True),
    (forms.CheckboxInput(attrs={"class": "form-check-input"}), False),
    (forms.Textarea(), None),
    (forms.Textarea(attrs=ATTRS), AWKWARD + "\n第二行"),
    (forms.Textarea(), "0"),
    (forms.Select(choices=CHOICES), None),
    (forms.Select(choices=CHOICES, attrs=ATTRS), "a&b"),
    (forms.Select(choices=CHOICES), 2),
    (forms.Select(choices=[]), None),
    (forms.SelectMultiple(choices=CHOICES), ["1", "safe"]),
    (forms.NullBooleanSelect(), True),
]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize(("widget", "value"), CASES, ids=lambda c: type(c).__name__)
def test_it_renders_each_widget_as_django_templates_do(widget, value, language):
    with override(language):
        expected = widget.render(
            "field", value, attrs={"id": "id_field"}, renderer=DjangoTemplates()
        )
        fast = widget.render("field", value, attrs={"id": "id_field"}, renderer=FastRenderer())
    assert fast == expected


def test_every_widget_template_it_builds_is_covered_here():
    covered = {widget.template_name for widget, _ in CASES}
    built_elsewhere = {"django/forms/widgets/input.html"} | {
        f"django/forms/widgets/{name}.html" for name in ("color", "search", "tel")
    }
    assert set(FAST) - covered <= built_elsewhere


def test_the_forms_of_the_site_use_it(settings):
    from django.forms.renderers import get_default_renderer

    assert settings.FORM_RENDERER == "crm.renderers.FastRenderer"

    assert isinstance(get_default_renderer(), FastRenderer)


class OptionWithItsOwnTemplate(forms.Select):
    option_template_name = "django/forms/widgets/input.html"


def test_other_templates_still_go_to_the_template_engine():
    renderer = FastRenderer()
    radio = forms.RadioSelect(choices=CHOICES[1:3])
    assert radio.render("r", 1, renderer=renderer) == radio.render(
        "r", 1, renderer=DjangoTemplates()
    )
    odd = OptionWithItsOwnTemplate(choices=[(1, "a")])
    html = odd.render("o", 1, renderer=renderer)
    assert html == odd.render("o", 1, renderer=DjangoTemplates())
    assert '<input type="select" name="o" value="1" selected>' in html  # its own template


def test_an_app_overriding_a_widget_template_keeps_its_template(monkeypatch):
    renderer = FastRenderer()

    class Overridden:
        origin = type("Origin", (), {"name": "/somewhere/else/templates/x.html"})()

        def render(self, context, request=None):
            return " <overridden> "

    real = renderer.get_template

    def get_template(name):
        return Overridden() if name.endswith("/text.html") else real(name)

    monkeypatch.setattr(renderer, "get_template", get_template)
    assert forms.TextInput().render("t", "v", renderer=renderer) == "<overridden>"
